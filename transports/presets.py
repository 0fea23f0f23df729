"""Provider presets and their guidance, as data.

Each preset fills host, port and security, says what the username looks like,
and carries the guidance shown beside the form. Facts checked against the
providers' own help pages (November 2026); Microsoft's dates are stated as
Microsoft announced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transports.settings import Security


@dataclass(frozen=True)
class Preset:
    """One provider preset."""

    key: str
    """Stable id written to the settings file (``preset = "gmail"``)."""
    label: str
    """What the picker shows."""
    host: str
    port: int
    security: Security
    username_hint: str
    """What the provider's login looks like, shown as the username placeholder."""
    guidance: str
    """Plain-text guidance for the side panel."""
    other_ports: tuple[tuple[int, Security], ...] = ()
    """Other port/security pairs the provider accepts."""
    strict_tls: bool = False
    """Certificates are always valid: "do not verify" is refused."""
    app_password: bool = False
    """The provider wants an app password instead of the account password."""
    hosts: tuple[str, ...] = field(default=())
    """Other host names of the same provider (regional hosts), for matching."""

    def matches(self, host: str, port: int, security: Security) -> bool:
        """True when the values are still this preset's (else the form says Custom)."""
        if self.key == "custom":
            return False
        known_hosts = {self.host, *self.hosts}
        pairs = {(self.port, self.security), *self.other_ports}
        return host.lower().rstrip(".") in known_hosts and (port, security) in pairs


OFFICE365_FACTS = (
    "Basic authentication (username + password) for SMTP AUTH at Microsoft:\n"
    "- keeps working through December 2026 for existing tenants that use it;\n"
    "- from the end of December 2026 it is OFF by default for existing tenants "
    "(a tenant admin can turn it back on for now) and unavailable for new tenants;\n"
    "- final removal is announced for the second half of 2027.\n"
    "The replacement is OAuth2 (SASL XOAUTH2, scope SMTP.Send). App passwords do "
    "not help here.\n"
    "Replies that mean exactly this: '535 5.7.139 ... basic authentication is "
    "disabled' and '550 5.7.30 Basic authentication is not supported for Client "
    "Submission'."
)
"""The dated facts on Microsoft's basic authentication for SMTP AUTH (the Office 365
preset's guidance and the hints for its refusals)."""

PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            key="gmail",
            label="Gmail",
            host="smtp.gmail.com",
            port=587,
            security=Security.STARTTLS,
            other_ports=((465, Security.TLS),),
            username_hint="you@gmail.com (the full address)",
            strict_tls=True,
            app_password=True,
            guidance=(
                "Gmail needs an app password, not your normal password:\n"
                "1. Turn on 2-Step Verification for the Google Account.\n"
                "2. Google Account → Security → App passwords: create one "
                "(name it e.g. 'smtpdesk').\n"
                "3. Paste the 16-character app password into the Password field "
                "(spaces do not matter).\n"
                "Server: smtp.gmail.com, port 587 with STARTTLS (465 with implicit "
                "TLS also works). Username: the full Gmail or Workspace address.\n"
                "Replies '534-5.7.9 Application-specific password required' and "
                "'535-5.7.8 Username and Password not accepted' mean the app "
                "password is missing or wrong.\n"
                "OAuth2 is not an option for Gmail here: Google's device sign-in (the "
                "code-on-another-device flow smtpdesk uses over SSH) does not grant mail "
                "scopes, so Gmail stays on app passwords."
            ),
        ),
        Preset(
            key="yahoo",
            label="Yahoo Mail",
            host="smtp.mail.yahoo.com",
            port=587,
            security=Security.STARTTLS,
            other_ports=((465, Security.TLS),),
            username_hint="you@yahoo.com (the full address)",
            strict_tls=True,
            app_password=True,
            guidance=(
                "Yahoo Mail needs an app password:\n"
                "1. Open Account Security (https://login.yahoo.com/account/security).\n"
                "2. Generate app password → choose 'Other app' and give it a name "
                "(e.g. smtpdesk) → Generate.\n"
                "3. Paste the generated password into the Password field.\n"
                "Server: smtp.mail.yahoo.com, port 587 with STARTTLS or 465 with "
                "implicit TLS. Username: the full Yahoo address."
            ),
        ),
        Preset(
            key="office365",
            label="Office 365 / Outlook",
            host="smtp.office365.com",
            port=587,
            security=Security.STARTTLS,
            username_hint="you@yourcompany.com (the mailbox address)",
            strict_tls=True,
            guidance=(
                "Microsoft 365 / Exchange Online: smtp.office365.com, port 587, STARTTLS.\n"
                "Sign in with OAuth2 (Authentication: OAuth2), once per machine:\n"
                "1. Register a public-client app in Entra ID (entra.microsoft.com): "
                "App registrations → New registration (any name, e.g. smtpdesk; no "
                "redirect URI).\n"
                "2. Authentication → 'Allow public client flows' = Yes → Save.\n"
                "3. API permissions → Add a permission → APIs my organization uses → "
                "'Office 365 Exchange Online' → Delegated permissions → SMTP.Send → Add; "
                "grant admin consent if your tenant requires it.\n"
                "4. Enter the app's Application (client) ID as Client ID and the "
                "Directory (tenant) ID or domain as Tenant ('organizations' also works).\n"
                "5. Enable SMTP AUTH on the mailbox: Microsoft 365 admin center → Users → "
                "the user → Mail → Manage email apps → Authenticated SMTP; or "
                "Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled "
                "$false. '535 5.7.139 ... SmtpClientAuthentication is disabled for the "
                "Tenant' means it is off.\n"
                "6. Sign in: the 'Sign in' button, or `smtpdesk oauth login` over SSH: "
                "open the page it shows on any device (a phone will do) and enter the "
                "code.\n"
                "The From address must be one this mailbox may send as "
                "('554 5.2.252 SendAsDenied' otherwise).\n\n" + OFFICE365_FACTS
            ),
        ),
        Preset(
            key="outlook",
            label="Outlook.com (personal)",
            host="smtp-mail.outlook.com",
            port=587,
            security=Security.STARTTLS,
            username_hint="you@outlook.com / hotmail.com / live.com",
            strict_tls=True,
            guidance=(
                "Outlook.com, Hotmail and Live personal accounts: smtp-mail.outlook.com, "
                "port 587, STARTTLS.\n"
                "Microsoft removed basic authentication for personal accounts in "
                "September 2024: a username and password (even an app password) "
                "are refused. Only OAuth2 (XOAUTH2) works for these accounts: choose "
                "Authentication: OAuth2 with an app registration that allows personal "
                "Microsoft accounts and Tenant 'consumers', then sign in (the Office 365 "
                "preset's guidance has the registration steps)."
            ),
        ),
        Preset(
            key="icloud",
            label="iCloud Mail",
            host="smtp.mail.me.com",
            port=587,
            security=Security.STARTTLS,
            username_hint="you@icloud.com (the full address)",
            app_password=True,
            guidance=(
                "iCloud Mail: smtp.mail.me.com, port 587, STARTTLS.\n"
                "Use an app-specific password: Apple Account (account.apple.com) → "
                "Sign-In and Security → App-Specific Passwords → generate one.\n"
                "Two-factor authentication must be on. Username: the full iCloud "
                "address (@icloud.com, @me.com or @mac.com)."
            ),
        ),
        Preset(
            key="zoho",
            label="Zoho Mail",
            host="smtp.zoho.com",
            port=465,
            security=Security.TLS,
            other_ports=((587, Security.STARTTLS),),
            hosts=(
                "smtp.zoho.eu",
                "smtp.zoho.in",
                "smtp.zoho.com.au",
                "smtp.zoho.jp",
                "smtppro.zoho.com",
                "smtppro.zoho.eu",
            ),
            username_hint="you@yourdomain.com (the full address)",
            guidance=(
                "Zoho Mail: smtp.zoho.com, port 465 with implicit TLS (or 587 with "
                "STARTTLS).\n"
                "Use the host of your data centre: smtp.zoho.eu, smtp.zoho.in, "
                "smtp.zoho.com.au or smtp.zoho.jp (organisation accounts: "
                "smtppro.zoho.com / .eu).\n"
                "With two-factor authentication on, create an application-specific "
                "password (Zoho Accounts → Security → App Passwords)."
            ),
        ),
        Preset(
            key="fastmail",
            label="Fastmail",
            host="smtp.fastmail.com",
            port=465,
            security=Security.TLS,
            other_ports=((587, Security.STARTTLS),),
            username_hint="you@fastmail.com (the full address)",
            app_password=True,
            guidance=(
                "Fastmail: smtp.fastmail.com, port 465 with implicit TLS (587 with "
                "STARTTLS also works).\n"
                "Create an app password: Settings → Privacy & Security → "
                "Manage app passwords → New app password, access 'SMTP'.\n"
                "Username: the full Fastmail address."
            ),
        ),
        Preset(
            key="gmx",
            label="GMX Mail",
            host="mail.gmx.com",
            port=465,
            security=Security.TLS,
            other_ports=((587, Security.STARTTLS),),
            hosts=("mail.gmx.net",),
            username_hint="you@gmx.com (the full address)",
            guidance=(
                "GMX: mail.gmx.com, port 465 with implicit TLS or 587 with STARTTLS "
                "(German accounts: mail.gmx.net).\n"
                "POP3/IMAP/SMTP access must be allowed in the GMX settings "
                "(E-Mail → Settings → POP3 & IMAP). Username: the full address."
            ),
        ),
        Preset(
            key="aol",
            label="AOL Mail",
            host="smtp.aol.com",
            port=465,
            security=Security.TLS,
            other_ports=((587, Security.STARTTLS),),
            username_hint="you@aol.com (the full address)",
            app_password=True,
            guidance=(
                "AOL: smtp.aol.com, port 465 with implicit TLS.\n"
                "Generate an app password: Account Security → Generate app password, "
                "and use it instead of the account password."
            ),
        ),
        Preset(
            key="sandbox",
            label="Local sandbox",
            host="127.0.0.1",
            port=8587,
            security=Security.STARTTLS,
            username_hint="demo@smtpdesk.test",
            guidance=(
                "The built-in sandbox: a local SMTP server with STARTTLS and AUTH and "
                "a self-signed certificate made at start. It accepts mail and keeps "
                "every message as a file; nothing leaves this machine.\n"
                "Start it with 'smtpdesk sandbox' (or use 'smtpdesk --demo'). "
                "Login: demo@smtpdesk.test, password 'sandbox-pass'. Its certificate is "
                "trusted through the Trusted certificate file it writes."
            ),
        ),
        Preset(
            key="custom",
            label="Custom",
            host="",
            port=587,
            security=Security.STARTTLS,
            username_hint="usually the full email address",
            guidance=(
                "Any SMTP server: your provider's documentation gives the host name, "
                "port and security.\n"
                "Port 465 means implicit TLS, 587 means STARTTLS; 25 is for relays "
                "between servers and is blocked by many hosting providers.\n"
                "Leave the username empty for an internal relay that trusts this host."
            ),
        ),
    )
}


def preset_for(host: str, port: int, security: Security, current: str = "custom") -> str:
    """The preset the values still match: ``current`` if it does, else any, else custom."""
    if current in PRESETS and PRESETS[current].matches(host, port, security):
        return current
    for preset in PRESETS.values():
        if preset.matches(host, port, security):
            return preset.key
    return "custom"
