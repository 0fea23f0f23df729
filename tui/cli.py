"""The command line: the whole engine for scripts, cron and first checks over SSH.

    smtpdesk                      open the TUI
    smtpdesk --demo [COMMAND]     against an in-process sandbox, temporary config
    smtpdesk test [--to ADDR] [--probe] [--json]
    smtpdesk send --to ADDR [--cc ADDR] [--subject S] [--body TEXT | --body-file F]
                  [--attach FILE]... [--json]
    smtpdesk send --document ID [--document ID]... [--to ADDR]... [--cc ADDR] ...
    smtpdesk send --resume [BATCH] [--resend-unknown]
    smtpdesk documents list [--json] | render ID --out FILE.pdf
    smtpdesk log [--json] [--document ID] [--state S] [--limit N]
    smtpdesk show [--json]
    smtpdesk password set [--stdin] | clear
    smtpdesk oauth login | status [--json] | logout
    smtpdesk sandbox [--port N] [--tls-port N] [--http-port N]

Exit codes: 0 success, 1 a send or test failed (the hints are printed),
2 usage or configuration error (the message names the file and the field),
130 cancelled with Ctrl+C.

Every line that carries text from a server goes through
``tui.terminal.neutralise``. Nothing heavy is imported at start: Textual only
for the TUI, the engine only by the commands that use it, so ``--help`` and
``show`` start fast over SSH.

Every send goes through the send log (``tui.sendlog``) as a batch of one or
more jobs (``tui.batch``), so it is recorded before and after; documents are
emailed through ``tui.emailing`` (the same templates as the TUI's dialog).
PDFs are rendered with ``SOURCE_DATE_EPOCH`` as the creation date when set.

Adding a subcommand is one function decorated with ``@command``: it adds its
parser to the subparsers and sets ``handler``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.terminal import neutralise

if TYPE_CHECKING:
    from transports.base import TokenSource
    from transports.errors import SendFailure
    from transports.events import TranscriptEvent
    from transports.settings import Settings
    from tui.oauth import OAuthService
    from tui.sandbox import Sandbox

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, as a shell reports a writer whose reader went away."""

Handler = Callable[["Context"], int]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
_COMMANDS: list[Registrar] = []


def command(registrar: Registrar) -> Registrar:
    """Register a function that adds one subcommand (and its ``handler``) to the parser."""
    _COMMANDS.append(registrar)
    return registrar


class CliError(Exception):
    """A usage or configuration error: printed as one clear message, then exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    """What every command gets: the parsed arguments, paths and output streams."""

    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _oauth: OAuthService | None = field(default=None, init=False, repr=False)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def demo(self) -> bool:
        return bool(self.args.demo)

    def config_path(self) -> Path:
        from tui.paths import config_path

        return config_path(self.args.config)

    def line(self, text: str = "") -> None:
        """One line of human output on stdout, made safe for the terminal."""
        print(neutralise(text), file=self.out, flush=True)

    def record(self, data: dict[str, Any]) -> None:
        """One JSON object on one line (``--json``)."""
        print(json.dumps(data), file=self.out, flush=True)

    def warn(self, text: str) -> None:
        for part in text.splitlines() or [""]:
            print(f"smtpdesk: {neutralise(part)}", file=self.err, flush=True)

    def load_settings(self, *, required: bool) -> Settings:
        """The saved settings; ``CliError`` (exit 2) naming the file and key when bad."""
        from tui.store import SettingsStore, StoreError

        store = SettingsStore(self.config_path())
        try:
            settings = store.load()
        except StoreError as exc:
            raise CliError(str(exc)) from None
        for notice in store.notices:  # e.g. a world-readable file made private: said once
            self.warn(notice)
        if required and not store.exists():
            raise CliError(
                f"{store.path}: no settings file yet. Fill in the form with `smtpdesk`, "
                "write the file by hand (`smtpdesk show` prints a template), "
                "or try everything against the built-in sandbox with `smtpdesk --demo test`."
            )
        return settings

    def oauth_service(self) -> OAuthService:
        """The process's one OAuth2 service (it holds the access tokens in memory).

        It trusts the system CAs; ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace them
        (httpx's ``trust_env``), as do ``HTTPS_PROXY`` and friends.
        """
        if self._oauth is None:
            from tui.oauth import OAuthService

            self._oauth = OAuthService()
        return self._oauth

    def token_source(self, settings: Settings) -> TokenSource | None:
        """The OAuth2 token source when the settings log in with XOAUTH2, else None."""
        if not _uses_oauth(settings):
            return None
        from tui.oauth_smtp import token_source

        return token_source(settings, self.oauth_service())

    def secret(self, settings: Settings) -> str | None:
        """The password from env, command or keyring; ``CliError`` when a source fails.

        None without a lookup when the settings log in with OAuth2.
        """
        from transports.settings import Protocol
        from tui.secrets import KeyringUnavailable, SecretsError, get_password

        if _uses_oauth(settings):
            return None
        try:
            return get_password(settings)
        except KeyringUnavailable as exc:
            if settings.protocol is Protocol.HTTP:
                # A relay key is optional: go on without one (a relay that needs
                # it answers 401, whose hint names the key).
                self.warn("no keyring here: sending without a relay key")
                return None
            raise CliError(str(exc)) from None
        except SecretsError as exc:
            raise CliError(str(exc)) from None


def _uses_oauth(settings: Settings) -> bool:
    """SMTP with ``auth = "oauth2"`` (checked without importing the OAuth2 service)."""
    return settings.protocol.value == "smtp" and settings.smtp.auth.value == "oauth2"


# -- output helpers -------------------------------------------------------------


def _terminal_columns() -> int:
    """The terminal's width (COLUMNS when set, 80 when not a terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


def _width() -> int:
    return max(40, min(100, shutil.get_terminal_size((100, 24)).columns))


def _failure_lines(failure: SendFailure) -> list[str]:
    """The failing step, the class, the title, the server's words and numbered hints."""
    lines = [
        f"FAILED at step '{failure.step.value}': {failure.title} [{failure.failure_class.value}]"
    ]
    if failure.detail:
        lines.append(f"  {failure.detail}")
    if failure.hints:
        lines.append("What to try:")
        for number, hint in enumerate(failure.hints, 1):
            prefix = f"  {number}. "
            lines.extend(
                textwrap.wrap(
                    hint,
                    width=_width(),
                    initial_indent=prefix,
                    subsequent_indent=" " * len(prefix),
                )
                or [prefix]
            )
    return lines


def _event_printer(ctx: Context) -> Callable[[TranscriptEvent], None]:
    def on_event(event: TranscriptEvent) -> None:
        if ctx.json:
            ctx.record(event.to_dict())
        else:
            ctx.line(event.format())

    return on_event


def _run_async(ctx: Context, coroutine: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; Ctrl+C → "cancelled", exit 130, no traceback."""
    import asyncio  # here, not at the top: `show` and `--help` never need it

    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        if ctx.json:
            ctx.record({"type": "result", "ok": False, "cancelled": True})
        ctx.warn("cancelled")
        return EXIT_CANCELLED


# -- demo mode --------------------------------------------------------------------


@dataclass
class Demo:
    """A running in-process sandbox and a temporary config pointed at it."""

    sandbox: Sandbox
    settings: Settings
    config_path: Path
    folder: Path


@contextlib.contextmanager
def _demo_dirs() -> Any:
    """A temporary folder for the demo's config and data (the record of the test)."""
    from tui.paths import DATA_DIR_ENV

    previous = os.environ.get(DATA_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="smtpdesk-demo-") as folder:
        os.environ[DATA_DIR_ENV] = str(Path(folder) / "data")
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop(DATA_DIR_ENV, None)
            else:
                os.environ[DATA_DIR_ENV] = previous


@contextlib.asynccontextmanager
async def _demo(ctx: Context) -> AsyncIterator[Demo]:
    """Start the sandbox in this loop and save settings for it to a temporary config."""
    from tui.sandbox import Sandbox
    from tui.store import SettingsStore

    with _demo_dirs() as folder:
        # A fresh random password: it never collides with other text in the
        # transcript's redaction, and no other local user can guess it.
        accounts = {"demo@smtpdesk.test": os.urandom(9).hex()}
        async with Sandbox(folder / "sandbox", accounts=accounts) as sandbox:
            settings = sandbox.settings("starttls")
            config = folder / "config" / "settings.toml"
            SettingsStore(config).save(settings)
            if not ctx.json:
                ctx.line(
                    f"demo: sandbox on 127.0.0.1 (submission port {sandbox.submission_port}), "
                    f"temporary config {config}"
                )
            yield Demo(sandbox=sandbox, settings=settings, config_path=config, folder=folder)


# -- the parser -----------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smtpdesk")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (``importlib.metadata``
    costs tens of milliseconds at every start otherwise)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest=dest,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        parser._print_message(f"smtpdesk {_version()}\n", sys.stdout)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="smtpdesk",
        description="Set up, test and use the outgoing email of a business application.",
        epilog="Exit codes: 0 success, 1 send or test failed, 2 usage or configuration "
        "error, 130 cancelled. Without a command, smtpdesk opens the terminal UI.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $SMTPDESK_CONFIG, else the user config dir)",
    )
    parser.add_argument(
        "--documents",
        metavar="DIR",
        help="documents folder (default: $SMTPDESK_DOCUMENTS, else the settings, "
        "else the user data dir)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use a built-in local sandbox and a temporary config (no account needed)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for registrar in _COMMANDS:
        registrar(subparsers)
    return parser


# -- test -----------------------------------------------------------------------


def _check_address(option: str, value: str) -> str:
    from transports.addresses import normalize_address

    try:
        return normalize_address(value)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from None


@command
def _add_test(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run the test send and stream the transcript",
        description="Connect, secure, authenticate and send a short test message, "
        "printing every step as it happens. On failure, print the failing step and "
        "what to try. Exit 0 on success, 1 on failure.",
    )
    parser.add_argument(
        "--to", metavar="ADDR", help="recipient of the test message (default: the sender)"
    )
    parser.add_argument(
        "--probe", action="store_true", help="connect, TLS and AUTH only; send no message"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per event and a final result"
    )
    parser.set_defaults(handler=run_test_command)


def run_test_command(ctx: Context) -> int:
    """``smtpdesk test``."""
    to = _check_address("--to", ctx.args.to) if ctx.args.to is not None else None
    if ctx.demo:

        async def demo_test() -> int:
            async with _demo(ctx) as demo:
                return await _test(ctx, demo.settings, demo.sandbox.password, to)

        return _run_async(ctx, demo_test())
    settings = ctx.load_settings(required=True)
    secret = ctx.secret(settings)
    return _run_async(ctx, _test(ctx, settings, secret, to))


async def _test(ctx: Context, settings: Settings, secret: str | None, to: str | None) -> int:
    from transports.testsend import run_test
    from tui.verified import record_success

    if not ctx.json:
        where = (
            settings.http.url
            if settings.protocol.value == "http"
            else f"{settings.smtp.host}:{settings.smtp.port} ({settings.smtp.security.value})"
        )
        ctx.line(f"{'probing' if ctx.args.probe else 'testing'} {where}")
    outcome = await run_test(
        settings,
        secret,
        on_event=_event_printer(ctx),
        to=to,
        probe=ctx.args.probe,
        token_source=ctx.token_source(settings),
    )
    if ctx.json:
        ctx.record(outcome.to_dict())
    if not outcome.ok:
        if outcome.failure is not None and not ctx.json:
            for text in _failure_lines(outcome.failure):
                ctx.line(text)
        return EXIT_FAILED
    if not ctx.args.probe:
        # A probe sends no message: only a full test marks the settings verified.
        try:
            record_success(settings)
        except OSError as exc:
            ctx.warn(f"the test passed, but it could not be recorded: {exc.strerror}")
    if not ctx.json:
        ctx.line("OK: the test passed" if not ctx.args.probe else "OK: the probe passed")
    return EXIT_OK


# -- send -----------------------------------------------------------------------


@command
def _add_send(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send an email or documents with the saved settings",
        description="Build a message (the settings' copy-to and reply-to applied) and "
        "send it; with --document, email documents as PDF attachments (To defaults to "
        "each document's contact; several documents go as one batch over one "
        "connection). Every send is recorded in the send log before and after "
        "(`smtpdesk log`). Nothing is sent when an argument is invalid, a document is "
        "unknown or an attachment cannot be read (exit 2). Exit 0 only when "
        "everything was sent.",
    )
    parser.add_argument(
        "--to",
        metavar="ADDR",
        action="append",
        default=[],
        help="recipient (repeatable; with --document it replaces the contact's addresses)",
    )
    parser.add_argument("--cc", metavar="ADDR", action="append", default=[], help="copy to")
    parser.add_argument(
        "--document",
        metavar="ID",
        action="append",
        default=[],
        help="email this document as a PDF (repeatable: one batch, one connection)",
    )
    parser.add_argument(
        "--subject", metavar="S", help="subject line (with --document: instead of the template)"
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument(
        "--body", metavar="TEXT", help="message text (with --document: instead of the template)"
    )
    body.add_argument(
        "--body-file", metavar="F", help="read the message text from a file ('-': stdin)"
    )
    parser.add_argument(
        "--attach", metavar="FILE", action="append", default=[], help="attach a file (repeatable)"
    )
    parser.add_argument(
        "--resume",
        metavar="BATCH",
        nargs="?",
        const="",
        help="finish an interrupted batch from the send log (without BATCH: the only one)",
    )
    parser.add_argument(
        "--resend-unknown",
        action="store_true",
        help="with --resume: also resend messages whose delivery is unknown (same Message-ID)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the transcript")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per event and a final result"
    )
    parser.set_defaults(handler=run_send_command)


def _read_body(ctx: Context) -> str | None:
    """The text of --body or --body-file; None when neither was given."""
    if ctx.args.body is not None:
        return str(ctx.args.body)
    if ctx.args.body_file is None:
        return None
    try:
        if ctx.args.body_file == "-":
            data = sys.stdin.buffer.read()
        else:
            data = Path(ctx.args.body_file).read_bytes()
    except OSError as exc:
        raise CliError(f"--body-file {ctx.args.body_file}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"--body-file {ctx.args.body_file}: is not UTF-8 text") from None


def _read_attachments(paths: list[str]) -> list[Any]:
    from transports.addresses import check_header_text, shorten
    from transports.message import Attachment
    from transports.settings import check_path

    attachments = []
    for name in paths:
        path = Path(name)
        try:
            if not name:
                raise ValueError("is empty: give a file name")
            check_path(name)
            check_header_text(path.name)  # the name the customer sees (no U+202E tricks)
        except ValueError as exc:
            raise CliError(f"--attach {shorten(name)}: {exc}") from None
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            raise CliError(f"--attach {shorten(name)}: is a folder, not a file") from None
        except OSError as exc:
            raise CliError(f"--attach {shorten(name)}: cannot read: {exc.strerror}") from None
        attachments.append(Attachment(filename=path.name, data=data))
    return attachments


def run_send_command(ctx: Context) -> int:
    """``smtpdesk send``: one message, documents, or ``--resume``; always via the send log."""
    from transports.addresses import check_header_text

    args = ctx.args
    if args.resume is not None:
        given = [o for o, v in (("--to", args.to), ("--document", args.document)) if v]
        if given or args.attach or args.subject is not None:
            raise CliError("--resume: resends what the log holds; it takes no message options")
        if args.resume:
            _check_batch_id(args.resume)
    elif args.resend_unknown:
        raise CliError("--resend-unknown: only with --resume")
    # Checked before anything else, so a bad value never reaches a server.
    for option, values in (("--to", args.to), ("--cc", args.cc)):
        for value in values:
            _check_address(option, value)
    if args.subject is not None:
        try:
            check_header_text(args.subject)
        except ValueError as exc:
            raise CliError(f"--subject: {exc}") from None
    if args.resume is None and not args.to and not args.document:
        raise CliError("--to: at least one recipient is required (or --document ID)")
    if len(set(args.document)) != len(args.document):
        raise CliError("--document: the same document is named twice")
    body = _read_body(ctx) if args.resume is None else None
    attachments = _read_attachments(args.attach)
    if ctx.demo:

        async def demo_send() -> int:
            async with _demo(ctx) as demo:
                demo.sandbox.on_message = lambda m: (
                    None
                    if ctx.json
                    else ctx.line(f"demo: the sandbox captured {m.queue_id} -> {m.path}")
                )
                settings = demo.settings
                if args.resume is not None:
                    return await _resume(ctx, settings, demo.sandbox.password)
                jobs = _prepare_jobs(ctx, settings, body, attachments)
                return await _send_jobs(ctx, settings, demo.sandbox.password, jobs)

        return _run_async(ctx, demo_send())
    settings = ctx.load_settings(required=True)
    if args.resume is not None:
        return _run_async(ctx, _resume(ctx, settings, ctx.secret(settings)))
    # A bad message or document fails before any password lookup.
    jobs = _prepare_jobs(ctx, settings, body, attachments)
    secret = ctx.secret(settings)
    return _run_async(ctx, _send_jobs(ctx, settings, secret, jobs))


def _check_batch_id(value: str) -> None:
    from transports.addresses import check_header_text

    try:
        check_header_text(value)
    except ValueError as exc:
        raise CliError(f"--resume: {exc}") from None


def _prepare_jobs(
    ctx: Context, settings: Settings, body: str | None, attachments: list[Any]
) -> list[Any]:
    """The batch jobs, every message built (and every PDF rendered) before sending."""
    from transports.message import MessageError, build_message
    from tui.batch import BatchJob

    args = ctx.args
    if not args.document:
        try:
            outgoing = build_message(
                settings,
                to=args.to,
                cc=args.cc,
                subject=args.subject or "",
                body=body or "",
                attachments=attachments,
            )
        except MessageError as exc:
            raise CliError(str(exc)) from None
        return [BatchJob(job_id="message", message=outgoing)]

    from tui.emailing import build_email, draft_email, render_attachment

    creation_date = _creation_date()
    library = _load_library(ctx, settings, show_problems=False)
    documents = [_find_document(library, key) for key in args.document]
    if len({doc.id for doc in documents}) != len(documents):
        raise CliError("--document: the same document is named twice")
    jobs = []
    for doc in documents:
        draft = draft_email(
            doc,
            library,
            settings,
            to=args.to or None,
            cc=args.cc,
            subject=args.subject,
            body=body,
        )
        try:
            pdf = render_attachment(doc, library, settings, creation_date=creation_date)
        except ValueError as exc:  # MissingGlyphsError, or an unusable fallback font
            raise CliError(f"{doc.id}: cannot render the PDF: {exc}") from None
        try:
            outgoing = build_email(draft, settings, pdf, extra_attachments=attachments)
        except MessageError as exc:
            raise CliError(f"{doc.id}: {exc}") from None
        jobs.append(BatchJob(job_id=doc.id, message=outgoing, document_id=doc.id))
    return jobs


def _open_send_log() -> Any:
    from tui.sendlog import SendLog, SendLogError

    try:
        return SendLog()
    except SendLogError as exc:
        raise CliError(str(exc)) from None


def _progress_printer(ctx: Context) -> Callable[[Any], None]:
    """One line per change of a job's state: ``[2/5] INV-0042: sent (250 ...)``."""
    from tui.sendlog import EntryState

    def on_progress(progress: Any) -> None:
        last = progress.last
        if last is None:
            return
        if ctx.json:
            ctx.record(
                {
                    "type": "progress",
                    "total": progress.total,
                    "sent": progress.sent,
                    "failed": progress.failed,
                    "unknown": progress.unknown,
                    "retrying": progress.retrying,
                    "remaining": progress.remaining,
                    "job": _job_dict(last),
                }
            )
            return
        done = progress.sent + progress.failed + progress.unknown
        where = f"[{done}/{progress.total}] {last.job_id}"
        if last.state is EntryState.SENT:
            reply = last.result.reply if last.result else last.note
            ctx.line(f"{where}: sent ({reply})")
        elif last.state is EntryState.QUEUED and last.failure is not None:
            ctx.line(f"{where}: temporary failure, will retry ({last.failure})")
        elif last.state is EntryState.FAILED:
            ctx.line(f"{where}: FAILED ({last.failure or last.note})")
        elif last.state is EntryState.UNKNOWN:
            ctx.line(f"{where}: UNKNOWN whether delivered ({last.note})")

    return on_progress


def _job_dict(job: Any) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "document_id": job.document_id,
        "state": job.state.value,
        "message_id": job.message_id,
        "attempts": job.attempts,
        "result": job.result.to_dict() if job.result else None,
        "failure": job.failure.to_dict() if job.failure else None,
        "note": job.note,
    }


def _job_ok(job: Any) -> bool:
    from tui.sendlog import EntryState

    return bool(job.state is EntryState.SENT and not (job.result and job.result.refused))


async def _run_batch(ctx: Context, run: Callable[..., Any], *, progress: bool = True) -> Any:
    """Run ``send_batch`` or ``resume_batch`` with the log, printers and a SendLogBusy → exit 2."""
    from tui.sendlog import SendLogError

    printer = _event_printer(ctx)

    def on_event(event: TranscriptEvent) -> None:
        if ctx.json or ctx.args.verbose:
            printer(event)

    with _open_send_log() as log:
        try:
            on_progress = _progress_printer(ctx) if progress else None
            return await run(log=log, on_event=on_event, on_progress=on_progress)
        except SendLogError as exc:  # SendLogBusy: another batch is sending
            raise CliError(str(exc)) from None


async def _send_jobs(ctx: Context, settings: Settings, secret: str | None, jobs: list[Any]) -> int:
    from transports.events import Clock
    from tui.batch import send_batch

    clock = Clock()
    plain = len(jobs) == 1 and jobs[0].document_id is None
    if not plain and not ctx.json:
        count = len(jobs)
        ctx.line(f"sending {count} document{'s' if count != 1 else ''} over one connection")

    async def run(**kwargs: Any) -> Any:
        return await send_batch(
            settings, secret, jobs, token_source=ctx.token_source(settings), **kwargs
        )

    report = await _run_batch(ctx, run, progress=not plain)
    if plain:
        return _plain_result(ctx, report.results[0], clock.elapsed_ms())
    return _batch_result(ctx, report)


def _plain_result(ctx: Context, job: Any, elapsed_ms: float) -> int:
    """The outcome of a plain ``send --to``, as before the send log existed."""
    ok = _job_ok(job)
    if ctx.json:
        ctx.record(
            {
                "type": "result",
                "ok": ok,
                "elapsed_ms": round(elapsed_ms, 1),
                "result": job.result.to_dict() if job.result else None,
                "failure": job.failure.to_dict() if job.failure and not job.result else None,
                "state": job.state.value,
                "message_id": job.message_id,
            }
        )
        return EXIT_OK if ok else EXIT_FAILED
    if job.result is not None:
        result = job.result
        ctx.line(f"sent to {', '.join(result.accepted)}")
        ctx.line(f"message id: {result.message_id}")
        ctx.line(f"queue id: {result.queue_id or '(the server gave none)'}")
        ctx.line(f"server reply: {result.reply}")
        for address, reason in result.refused.items():
            ctx.line(f"REFUSED {address}: {reason}")
    elif job.failure is not None:
        for text in _failure_lines(job.failure):
            ctx.line(text)
        if job.state.value == "unknown":
            ctx.line(f"UNKNOWN whether delivered: {job.note}")
    return EXIT_OK if ok else EXIT_FAILED


def _batch_result(ctx: Context, report: Any) -> int:
    """Per-document results, a summary line, and how to resume when needed."""
    ok = all(_job_ok(job) for job in report.results)
    if ctx.json:
        ctx.record(
            {
                "type": "result",
                "ok": ok,
                "batch_id": report.batch_id,
                "cancelled": report.cancelled,
                "connections": report.connections,
                "jobs": [_job_dict(job) for job in report.results],
            }
        )
        return EXIT_OK if ok else EXIT_FAILED
    ctx.line()
    width = max((len(job.job_id) for job in report.results), default=0)
    for job in report.results:
        name = job.job_id.ljust(width)
        if job.result is not None:
            result = job.result
            queue = f", queue id {result.queue_id}" if result.queue_id else ""
            ctx.line(f"{name}  sent to {', '.join(result.accepted)}{queue}")
            for address, reason in result.refused.items():
                ctx.line(f"{' ' * width}  REFUSED {address}: {reason}")
        elif job.state.value == "sent":
            ctx.line(f"{name}  sent earlier ({job.note})")
        elif job.failure is not None and job.state.value == "failed":
            ctx.line(f"{name}  FAILED")
            for text in _failure_lines(job.failure):
                ctx.line(f"{' ' * width}  {text}")
        elif job.state.value == "unknown":
            ctx.line(f"{name}  UNKNOWN whether delivered: {job.note}")
        elif job.state.value == "failed":
            ctx.line(f"{name}  FAILED earlier ({job.note})")
        else:
            ctx.line(f"{name}  not sent ({job.state.value})")
    counts: dict[str, int] = {}
    for job in report.results:
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    connections = f", {report.connections} connection{'s' if report.connections != 1 else ''}"
    ctx.line(f"batch {report.batch_id}: {summary}{connections}")
    if any(job.state.value in {"queued", "sending"} for job in report.results):
        ctx.line(f"resume with: smtpdesk send --resume {report.batch_id}")
    if report.unknown:
        ctx.line(
            "check the mailbox (or the archive copy) for the unknown ones; "
            f"to resend them: smtpdesk send --resume {report.batch_id} --resend-unknown"
        )
    return EXIT_OK if ok else EXIT_FAILED


async def _resume(ctx: Context, settings: Settings, secret: str | None) -> int:
    from tui.batch import resume_batch

    wanted = ctx.args.resume
    with _open_send_log() as log:
        unfinished = log.unfinished_batches()
        known = bool(wanted) and bool(log.entries(batch_id=wanted, limit=1))
    if wanted and wanted not in unfinished:
        if known:
            ctx.line(f"batch {wanted} is finished: nothing to resume")
            return EXIT_OK
        listed = ", ".join(unfinished) or "none"
        raise CliError(f"--resume: the send log has no batch {wanted!r} (interrupted: {listed})")
    if not wanted:
        if not unfinished:
            ctx.line("nothing to resume: no interrupted batch in the send log")
            return EXIT_OK
        if len(unfinished) > 1:
            raise CliError(
                "--resume: several interrupted batches (" + ", ".join(unfinished) + "); "
                "name one: smtpdesk send --resume BATCH"
            )
        wanted = unfinished[0]
    if not ctx.json:
        ctx.line(f"resuming batch {wanted}")

    async def run(**kwargs: Any) -> Any:
        return await resume_batch(
            wanted,
            settings,
            secret,
            resend_unknown=ctx.args.resend_unknown,
            token_source=ctx.token_source(settings),
            **kwargs,
        )

    return _batch_result(ctx, await _run_batch(ctx, run))


# -- documents --------------------------------------------------------------------


def _creation_date() -> Any:
    """The PDF creation date from SOURCE_DATE_EPOCH (None: now); exit 2 when malformed."""
    from tui.emailing import creation_date_from_env

    try:
        return creation_date_from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _documents_folder(ctx: Context, settings: Settings) -> Path:
    """The documents folder; the default one is seeded with the samples on first use."""
    from tui.documents import ensure_documents_folder

    folder, origin = _documents_origin(ctx, settings)
    if origin == "default":
        try:
            ensure_documents_folder(folder)
        except OSError as exc:
            raise CliError(f"{folder}: cannot create the documents folder: {exc}") from None
    elif not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise CliError(f"{folder}: the documents folder (from {origin}) {what}")
    return folder


def _load_library(ctx: Context, settings: Settings, *, show_problems: bool) -> Any:
    from tui.documents import load_folder

    library = load_folder(_documents_folder(ctx, settings), business_name=settings.from_name)
    if show_problems:
        for problem in library.problems:
            ctx.warn(str(problem))
    return library


def _find_document(library: Any, key: str) -> Any:
    """The document by id (or by its number); exit 2 naming the nearest known ids."""
    import difflib

    documents = library.documents
    if key in documents:
        return documents[key]
    folded = [
        doc
        for doc in documents.values()
        if key.casefold() in (doc.id.casefold(), doc.number.casefold())
    ]
    if len(folded) == 1:
        return folded[0]
    broken = [p for p in library.problems if p.file.stem == key]
    if broken:
        raise CliError(f"document {key!r}: its file has problems and was skipped: {broken[0]}")
    known = sorted(documents)
    lowered = {doc_id.casefold(): doc_id for doc_id in known}
    near = [
        lowered[m]
        for m in difflib.get_close_matches(key.casefold(), list(lowered), n=3, cutoff=0.5)
    ]
    if near:
        hint = "did you mean " + ", ".join(near) + "?"
    elif known:
        hint = "known: " + ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
    else:
        hint = "the folder has no documents"
    raise CliError(f"document {key!r}: not in {library.folder} ({hint})")


def _documents_settings(ctx: Context, run: Callable[[Settings], int]) -> int:
    """Run a documents command with the saved settings (defaults when none are saved)."""
    if ctx.demo:
        from transports.settings import Settings

        with _demo_dirs():
            return run(Settings.unconfigured())
    return run(ctx.load_settings(required=False))


@command
def _add_documents(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "documents",
        help="list the documents or render one to PDF",
        description="The documents folder: --documents, else $SMTPDESK_DOCUMENTS, else "
        "[documents] folder in the settings, else the user data dir (seeded with a "
        "sample set on first use).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    list_parser = actions.add_parser(
        "list",
        help="a table of the documents (problems in the folder go to stderr)",
        description="List every document with its contact, date, total and when it was "
        "last emailed (from the send log). Files that cannot be loaded are reported on "
        "stderr by file and line; the others are still listed.",
    )
    list_parser.add_argument("--json", action="store_true", help="one JSON object")
    list_parser.set_defaults(handler=run_documents_list)
    render_parser = actions.add_parser(
        "render",
        help="render one document to a PDF file",
        description="Render the document to PDF (written atomically). Set "
        "SOURCE_DATE_EPOCH for byte-identical output.",
    )
    render_parser.add_argument("id", metavar="ID", help="the document id (or its number)")
    render_parser.add_argument(
        "--out", metavar="FILE.pdf", required=True, help="where to write the PDF"
    )
    render_parser.set_defaults(handler=run_documents_render)


def _display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(text: str, width: int) -> str:
    """Cut to ``width`` terminal columns (with …) and pad to it."""
    if _display_width(text) > width:
        while _display_width(text) > width - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (width - _display_width(text))


def _last_emailed(ids: list[str]) -> dict[str, Any]:
    """Last successful send per document, from the send log (none when there is no log)."""
    from tui.sendlog import SendLog, SendLogError, default_log_path

    if not default_log_path().exists():
        return {}
    try:
        with SendLog() as log:
            return {doc_id: log.last_emailed(doc_id) for doc_id in ids}
    except SendLogError:
        return {}


def _local_time(value: Any) -> str:
    return str(value.astimezone().strftime("%Y-%m-%d %H:%M")) if value else ""


def run_documents_list(ctx: Context) -> int:
    """``smtpdesk documents list``."""
    from tui.documents import format_money

    def go(settings: Settings) -> int:
        library = _load_library(ctx, settings, show_problems=True)
        docs = sorted(library.documents.values(), key=lambda d: (d.issue_date, d.id))
        last = _last_emailed([doc.id for doc in docs])
        if ctx.json:
            items = []
            for doc in docs:
                contact = library.contacts.get(doc.contact_id)
                total = doc.total
                emailed = last.get(doc.id)
                items.append(
                    {
                        "id": doc.id,
                        "type": doc.kind,
                        "number": doc.number,
                        "title": doc.title,
                        "contact": {"id": doc.contact_id, "name": contact.name if contact else ""},
                        "emails": library.recipients(doc),
                        "date": doc.issue_date.isoformat(),
                        "currency": doc.currency,
                        "total": str(total) if total is not None else None,
                        "last_emailed": emailed.isoformat() if emailed else None,
                    }
                )
            ctx.record(
                {
                    "type": "documents",
                    "folder": str(library.folder),
                    "documents": items,
                    "problems": [
                        {"file": str(p.file), "line": p.line, "message": p.message}
                        for p in library.problems
                    ],
                }
            )
            return EXIT_OK
        if not docs:
            ctx.line(f"no documents in {library.folder}")
            return EXIT_OK
        rows = [["ID", "TYPE", "NUMBER", "CONTACT", "DATE", "TOTAL", "EMAILED"]]
        for doc in docs:
            contact = library.contacts.get(doc.contact_id)
            total = doc.total
            rows.append(
                [
                    doc.id,
                    doc.LABEL,
                    doc.number,
                    contact.name if contact else doc.contact_id,
                    doc.issue_date.isoformat(),
                    format_money(total, doc.currency) if total is not None else "",
                    _local_time(last.get(doc.id)) or "never",
                ]
            )
        limits = [24, 14, 20, 26, 10, 16, 16]
        widths = [
            min(limit, max(_display_width(row[i]) for row in rows))
            for i, limit in enumerate(limits)
        ]
        shown = list(range(len(limits)))
        if all(doc.number.casefold() == doc.id.casefold() for doc in docs):
            shown.remove(2)  # the number is the id: one column says it
        # Fit an 80-column terminal over SSH: the contact name gives way first.
        for column, narrowest in ((3, 12), (1, 9), (0, 13)):  # contact, type, id
            spare = _terminal_columns() - (sum(widths[i] for i in shown) + 2 * (len(shown) - 1))
            if spare < 0:
                widths[column] = max(narrowest, widths[column] + spare)
        for row in rows:
            cells = [_fit(cell, widths[i]) for i, cell in enumerate(row)]
            total_cell = row[5]
            cells[5] = (
                " " * max(0, widths[5] - _display_width(total_cell))
                + _fit(total_cell, min(widths[5], _display_width(total_cell))).rstrip()
            )
            ctx.line("  ".join(cells[i] for i in shown).rstrip())
        ctx.line(f"{len(docs)} documents in {library.folder}")
        return EXIT_OK

    return _documents_settings(ctx, go)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, fsync, rename."""
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"--out {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise CliError(f"--out {path}: is a folder")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CliError(f"--out {path}: cannot write: {exc.strerror or exc}") from None


def run_documents_render(ctx: Context) -> int:
    """``smtpdesk documents render ID --out FILE.pdf``."""
    creation_date = _creation_date()
    out = Path(ctx.args.out)

    def go(settings: Settings) -> int:
        from tui.emailing import render_attachment

        library = _load_library(ctx, settings, show_problems=False)
        doc = _find_document(library, ctx.args.id)
        try:
            pdf = render_attachment(doc, library, settings, creation_date=creation_date)
        except ValueError as exc:  # MissingGlyphsError, or an unusable fallback font
            raise CliError(f"{doc.id}: cannot render the PDF: {exc}") from None
        _write_atomic(out, pdf.data)
        ctx.line(f"wrote {out} ({doc.title}, {len(pdf.data):,} bytes)")
        return EXIT_OK

    return _documents_settings(ctx, go)


# -- log --------------------------------------------------------------------------


@command
def _add_log(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "log",
        help="the send log: what went where, when, with the server's reply",
        description="Every send, newest first: time, state, document, recipients, "
        "subject, the server's reply and queue id, and the Message-ID.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per entry")
    parser.add_argument("--document", metavar="ID", help="only this document")
    parser.add_argument(
        "--state",
        choices=["queued", "sending", "sent", "failed", "unknown"],
        help="only entries in this state",
    )
    parser.add_argument("--limit", metavar="N", type=int, help="at most N entries")
    parser.set_defaults(handler=run_log_command)


def run_log_command(ctx: Context) -> int:
    """``smtpdesk log``."""
    if ctx.args.limit is not None and ctx.args.limit < 1:
        raise CliError("--limit: must be 1 or more")
    if ctx.demo:
        with _demo_dirs():
            return _print_log(ctx)
    return _print_log(ctx)


def _print_log(ctx: Context) -> int:
    from tui.sendlog import default_log_path

    path = default_log_path()
    if not path.exists():
        if not ctx.json:
            ctx.line(f"the send log is empty ({path} does not exist yet)")
        return EXIT_OK
    with _open_send_log() as log:
        entries = log.entries(
            document_id=ctx.args.document,
            state=ctx.args.state,
            limit=ctx.args.limit,
            newest_first=True,
        )
    if ctx.json:
        for entry in entries:
            ctx.record({"type": "entry", **entry.to_dict()})
        return EXIT_OK
    if not entries:
        ctx.line("no entries")
        return EXIT_OK
    for entry in entries:
        when = (entry.sent_at or entry.updated_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        document = entry.document_id or "-"
        ctx.line(f"{when}  {entry.state.value:<7}  {document}  {entry.subject}")
        ctx.line(f"    to: {', '.join(entry.recipients)}")
        if entry.reply or entry.queue_id:
            queue = f" (queue id {entry.queue_id})" if entry.queue_id else ""
            ctx.line(f"    reply: {entry.reply}{queue}")
        if entry.failure and entry.state.value != "sent":
            ctx.line(f"    failure: {entry.failure}")
        attempts = f", {entry.attempts} attempts" if entry.attempts > 1 else ""
        ctx.line(f"    message-id: {entry.message_id}  batch {entry.batch_id}{attempts}")
    return EXIT_OK


# -- show -------------------------------------------------------------------------


@command
def _add_show(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show",
        help="the effective settings, where the password comes from, whether verified",
        description="Print the settings in effect (never the password), the config file, "
        "where the password would come from, and whether the last successful test "
        "used exactly these settings.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(handler=run_show_command)


def _verified_state(settings: Settings) -> dict[str, Any]:
    from tui.verified import fingerprint, last_success

    record = last_success()
    if record is None:
        return {"state": "never", "text": "never tested", "when": None}
    when = record.when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    if record.fingerprint == fingerprint(settings):
        return {"state": "verified", "text": f"verified at {when}", "when": when}
    return {
        "state": "changed",
        "text": f"changed since the last successful test ({when}, {record.describe()})",
        "when": when,
    }


def run_show_command(ctx: Context) -> int:
    """``smtpdesk show``."""
    if ctx.demo:

        async def demo_show() -> int:
            async with _demo(ctx) as demo:
                return _show(ctx, demo.settings, demo.config_path, exists=True, demo=True)

        return _run_async(ctx, demo_show())
    from tui.store import SettingsStore

    path = ctx.config_path()
    settings = ctx.load_settings(required=False)
    return _show(ctx, settings, path, exists=SettingsStore(path).exists(), demo=False)


def _config_origin(ctx: Context) -> str:
    from tui.paths import CONFIG_ENV

    if ctx.args.config:
        return "--config"
    if os.environ.get(CONFIG_ENV):
        return CONFIG_ENV
    return "default"


def _documents_origin(ctx: Context, settings: Settings) -> tuple[Path, str]:
    from tui.paths import DOCUMENTS_ENV, documents_dir

    folder = documents_dir(ctx.args.documents, settings.documents.folder)
    if ctx.args.documents:
        return folder, "--documents"
    if os.environ.get(DOCUMENTS_ENV):
        return folder, DOCUMENTS_ENV
    if settings.documents.folder:
        return folder, "settings"
    return folder, "default"


def _show(ctx: Context, settings: Settings, path: Path, *, exists: bool, demo: bool) -> int:
    from tui.secrets import password_source
    from tui.store import dump_settings

    oauth = ctx.oauth_service().status(settings) if _uses_oauth(settings) and not demo else None
    source = password_source(settings) if not demo and oauth is None else None
    verified = _verified_state(settings) if exists else None
    documents, documents_from = _documents_origin(ctx, settings)
    config_from = "demo" if demo else _config_origin(ctx)
    if ctx.json:
        ctx.record(
            {
                "type": "show",
                "config_path": str(path),
                "config_from": config_from,
                "config_exists": exists,
                "documents_dir": str(documents),
                "documents_from": documents_from,
                "settings": settings.model_dump(mode="json"),
                "password": (
                    {"kind": source.kind, "description": source.description}
                    if source
                    else {"kind": "oauth2", "description": "not used: OAuth2 (XOAUTH2)"}
                    if oauth
                    else {"kind": "demo", "description": "the sandbox's demo password"}
                ),
                "oauth": _oauth_status_dict(oauth) if oauth else None,
                "verified": verified or {"state": "never", "text": "never tested", "when": None},
            }
        )
        return EXIT_OK
    ctx.line(f"# config file: {path} ({'from ' + config_from})")
    if not exists:
        ctx.line("# (no settings file yet: these are the defaults; edit and save it there)")
    ctx.line(f"# documents folder: {documents} (from {documents_from})")
    if oauth is not None:
        ctx.line(f"# authentication: OAuth2 (XOAUTH2) for {oauth.account}: {oauth.description}")
    elif source is not None:
        where = "from " if source.kind != "none" else ""
        ctx.line(f"# password: {where}{source.description}")
    else:
        ctx.line("# password: the sandbox's demo password, passed in memory")
    ctx.line(f"# last test: {verified['text'] if verified else 'never tested'}")
    ctx.line()
    body = dump_settings(settings).split("\n\n", 1)[1]
    for text in body.rstrip("\n").splitlines():
        ctx.line(text)
    return EXIT_OK


# -- oauth --------------------------------------------------------------------------


@command
def _add_oauth(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "oauth",
        help="OAuth2 sign-in for SMTP (Office 365): login, status, logout",
        description='With smtp.auth = "oauth2", smtpdesk logs in with SASL XOAUTH2 and an '
        "access token instead of a password. `login` signs in with a short code on any "
        "device (a phone will do: nothing needs a browser on this machine); the sign-in "
        "is kept in the system keyring (or comes from SMTPDESK_OAUTH_REFRESH_TOKEN).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    login = actions.add_parser(
        "login",
        help="sign in: open the page shown on any device and enter the code",
        description="Ask the sign-in server for a code, print the page to open and the "
        "code, then wait until the sign-in is done (Ctrl+C cancels; nothing is stored "
        "then). Exit 0 signed in, 1 the sign-in failed, 2 OAuth2 is not set up.",
    )
    login.set_defaults(handler=run_oauth_login)
    status = actions.add_parser(
        "status",
        help="whether this machine is signed in (never shows a token)",
        description="Print the account, where the sign-in is kept and when it was made. "
        "Exit 0 when signed in, 1 when not.",
    )
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(handler=run_oauth_status)
    logout = actions.add_parser(
        "logout",
        help="forget the sign-in stored on this machine",
        description="Remove the sign-in from the keyring. This is local: to revoke it at "
        "Microsoft, use 'Sign out everywhere' in the account's security settings.",
    )
    logout.set_defaults(handler=run_oauth_logout)


def _settings_for_oauth(ctx: Context) -> Settings:
    if ctx.demo:
        raise CliError("oauth: not used with --demo (the sandbox logs in with a password)")
    from transports.settings import AuthMethod, Protocol

    settings = ctx.load_settings(required=True)
    if settings.protocol is not Protocol.SMTP or settings.smtp.auth is not AuthMethod.OAUTH2:
        raise CliError(
            f'{ctx.config_path()}: smtp.auth is not "oauth2": set auth = "oauth2" in [smtp] '
            "and fill in the [oauth] section (client_id, tenant) first; the README has the "
            "steps for Office 365"
        )
    return settings


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def run_oauth_login(ctx: Context) -> int:
    """``smtpdesk oauth login``: the device code flow, printed for a human over SSH."""
    settings = _settings_for_oauth(ctx)
    return _run_async(ctx, _oauth_login(ctx, settings))


async def _oauth_login(ctx: Context, settings: Settings) -> int:
    from tui.oauth import OAuthError, OAuthFailure, PollUpdate

    service = ctx.oauth_service()

    def on_update(update: PollUpdate) -> None:
        if update.state == "slow_down":
            ctx.line(f"(the server asked to wait longer: checking every {update.interval} s)")
        elif update.state == "retrying":
            ctx.line("(the sign-in server did not answer; trying again)")

    try:
        code = await service.start_device_flow(settings)
        ctx.line(f"Signing in {settings.smtp.username} with OAuth2.")
        ctx.line()
        ctx.line("On any device (a phone will do), open:")
        ctx.line()
        ctx.line(f"    {code.verification_uri}")
        ctx.line()
        ctx.line("and enter the code:")
        ctx.line()
        ctx.line(f"    {code.user_code}")
        ctx.line()
        if code.verification_uri_complete:
            ctx.line(f"(or open {code.verification_uri_complete}, with the code filled in)")
        ctx.line(code.message)
        ctx.line(
            f"The code is valid for {_minutes(code.expires_in)}. Waiting for the sign-in "
            "(Ctrl+C cancels)..."
        )
        status = await service.poll(settings, code, on_update=on_update)
    except OAuthError as exc:
        ctx.warn(str(exc))
        return EXIT_USAGE if exc.kind is OAuthFailure.NOT_CONFIGURED else EXIT_FAILED
    ctx.line()
    ctx.line("OK: signed in")
    for text in status.lines():
        ctx.line(text)
    ctx.line("next: smtpdesk test")
    return EXIT_OK


def _oauth_status_dict(status: Any) -> dict[str, Any]:
    return {
        "account": status.account,
        "signed_in": status.signed_in,
        "source": status.source,
        "description": status.description,
        "client_id": status.client_id,
        "scope": status.scope,
        "signed_in_at": status.signed_in_at,
        "refreshed_at": status.refreshed_at,
    }


def run_oauth_status(ctx: Context) -> int:
    """``smtpdesk oauth status``: exit 0 signed in, 1 not."""
    settings = _settings_for_oauth(ctx)
    status = ctx.oauth_service().status(settings)
    if ctx.json:
        ctx.record({"type": "oauth_status", **_oauth_status_dict(status)})
    else:
        for text in status.lines():
            ctx.line(text)
    return EXIT_OK if status.signed_in else EXIT_FAILED


def run_oauth_logout(ctx: Context) -> int:
    """``smtpdesk oauth logout``: forget the stored sign-in."""
    from tui.oauth import REFRESH_TOKEN_ENV, OAuthError

    settings = _settings_for_oauth(ctx)
    try:
        removed = ctx.oauth_service().logout(settings)
    except OAuthError as exc:
        ctx.warn(str(exc))
        return EXIT_FAILED
    account = settings.smtp.username
    if removed:
        ctx.line(f"signed out: the sign-in of {account} was removed from the keyring")
    else:
        ctx.line(f"nothing to remove: no sign-in of {account} is stored on this machine")
    if os.environ.get(REFRESH_TOKEN_ENV):
        ctx.line(
            f"note: {REFRESH_TOKEN_ENV} is still set in the environment, and it wins: "
            "unset it to sign out completely"
        )
    return EXIT_OK


# -- password -----------------------------------------------------------------------


@command
def _add_password(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "password",
        help="store or remove the password in the system keyring",
        description="Manage the keyring entry (service 'smtpdesk', user "
        "'username@host', or the relay URL's host). Where no keyring works, use "
        "password_command in settings.toml or SMTPDESK_PASSWORD instead.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_parser = actions.add_parser(
        "set",
        help="store the password (prompted twice, or one line from stdin)",
        description="Store the password in the keyring: prompted twice (hidden) on a "
        "terminal, or read as one line from standard input with --stdin.",
    )
    set_parser.add_argument(
        "--stdin", action="store_true", help="read the password as one line from stdin"
    )
    set_parser.set_defaults(handler=run_password_set)
    clear_parser = actions.add_parser("clear", help="remove the password from the keyring")
    clear_parser.set_defaults(handler=run_password_clear)


def _settings_for_password(ctx: Context) -> Settings:
    if ctx.demo:
        raise CliError(
            "password: not used with --demo (the sandbox's password is passed in memory)"
        )
    from tui.secrets import needs_password

    settings = ctx.load_settings(required=True)
    if _uses_oauth(settings):
        raise CliError(
            f'{ctx.config_path()}: smtp.auth is "oauth2": there is no password to store; '
            "sign in with: smtpdesk oauth login"
        )
    if not needs_password(settings):
        raise CliError(
            f"{ctx.config_path()}: smtp.username is empty, so there is no AUTH and no "
            "password to store"
        )
    return settings


def _read_new_password(ctx: Context) -> str:
    import getpass

    if ctx.args.stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise CliError("password set: standard input is not a terminal; use --stdin")
    try:
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Again: ")
    except EOFError:
        raise CliError("password set: no password entered") from None
    if first != second:
        raise CliError("password set: the two entries differ; nothing was stored")
    return first


def run_password_set(ctx: Context) -> int:
    """``smtpdesk password set``."""
    from tui.secrets import PASSWORD_ENV, SecretsError, keyring_user, set_password

    settings = _settings_for_password(ctx)
    password = _read_new_password(ctx)
    try:
        set_password(settings, password)
    except SecretsError as exc:
        raise CliError(str(exc)) from None
    del password
    ctx.line(
        f"password stored in the keyring (service 'smtpdesk', user '{keyring_user(settings)}')"
    )
    if os.environ.get(PASSWORD_ENV):
        ctx.warn(f"note: {PASSWORD_ENV} is set and takes precedence over the keyring")
    elif settings.smtp.password_command:
        ctx.warn("note: password_command is set in the settings and takes precedence")
    return EXIT_OK


def run_password_clear(ctx: Context) -> int:
    """``smtpdesk password clear``."""
    from tui.secrets import SecretsError, clear_password, keyring_user

    settings = _settings_for_password(ctx)
    try:
        clear_password(settings)
    except SecretsError as exc:
        raise CliError(str(exc)) from None
    ctx.line(f"no password is stored in the keyring for '{keyring_user(settings)}' any more")
    return EXIT_OK


# -- sandbox ------------------------------------------------------------------------


@command
def _add_sandbox(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tui.paths import data_dir

    parser = subparsers.add_parser(
        "sandbox",
        help="run the local sandbox SMTP/HTTP sink in the foreground",
        description="A local mail sink on 127.0.0.1 with STARTTLS, implicit TLS, AUTH "
        "and an HTTP relay endpoint; every message is saved as an .eml file. "
        "Ctrl+C stops it.",
    )
    parser.add_argument(
        "--port", type=int, default=8587, metavar="N", help="submission (STARTTLS) port"
    )
    parser.add_argument("--tls-port", type=int, default=8465, metavar="N", help="implicit TLS port")
    parser.add_argument("--http-port", type=int, default=8025, metavar="N", help="HTTP port")
    parser.add_argument(
        "--folder",
        metavar="DIR",
        help=f"where messages are saved (default: {data_dir() / 'sandbox'})",
    )
    parser.set_defaults(handler=run_sandbox_command)


def run_sandbox_command(ctx: Context) -> int:
    """``smtpdesk sandbox``: runs until Ctrl+C (exit 0)."""
    from tui.paths import data_dir

    for option in ("port", "tls_port", "http_port"):
        value = getattr(ctx.args, option)
        if not 0 <= value <= 65535:
            raise CliError(f"--{option.replace('_', '-')}: must be between 0 and 65535")
    folder = Path(ctx.args.folder) if ctx.args.folder else data_dir() / "sandbox"
    import asyncio

    try:
        return asyncio.run(_sandbox(ctx, folder))
    except KeyboardInterrupt:
        ctx.line("sandbox stopped")
        return EXIT_OK


async def _sandbox(ctx: Context, folder: Path) -> int:
    import asyncio

    from tui.sandbox import Sandbox, describe_message, describe_sandbox
    from tui.store import dump_settings

    sandbox = Sandbox(
        folder,
        submission_port=ctx.args.port,
        tls_port=ctx.args.tls_port,
        http_port=ctx.args.http_port,
    )
    sandbox.on_message = lambda message: ctx.line(describe_message(message))
    try:
        await sandbox.start()
    except OSError as exc:
        raise CliError(
            f"sandbox: cannot listen on 127.0.0.1 ({exc.strerror or exc}); "
            "choose other ports with --port, --tls-port and --http-port"
        ) from None
    try:
        lines = describe_sandbox(sandbox)
        for text in lines[:-1]:
            ctx.line(text)
        ctx.line("settings.toml for it (paste into the settings file, or use --config):")
        snippet = dump_settings(sandbox.settings("starttls")).split("\n\n", 1)[1]
        for text in snippet.rstrip("\n").splitlines():
            ctx.line(f"  {text}")
        ctx.line(lines[-1])
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()
    return EXIT_OK


# -- the TUI ------------------------------------------------------------------------


def run_tui_command(ctx: Context) -> int:
    """No subcommand: the TUI (with ``--demo``: against the sandbox)."""
    # Textual is imported here and only here; collector off while it is (~13 ms).
    with _starting_up(freeze=False):
        from tui.app import run_tui

    documents = Path(ctx.args.documents) if ctx.args.documents else None
    if ctx.demo:
        with _demo_dirs() as folder:
            result: int = run_tui(
                config_path=folder / "config" / "settings.toml",
                documents_dir=documents,
                demo=True,
            )
            return result
    result = run_tui(config_path=ctx.config_path(), documents_dir=documents, demo=False)
    return result


# -- main -----------------------------------------------------------------------------


def _check_path_options(args: argparse.Namespace) -> None:
    """--config and --documents: no control characters, edge spaces or absurd lengths."""
    from transports.settings import check_path

    for option in ("config", "documents"):
        value = getattr(args, option, None)
        if value:
            try:
                check_path(value)
            except ValueError as exc:
                raise CliError(f"--{option}: {exc}") from None


@contextlib.contextmanager
def _starting_up(*, freeze: bool) -> Iterator[None]:
    """The cyclic garbage collector off while the process starts up.

    Start-up makes objects that live as long as the process (pydantic's schemas and
    validators, the settings models, argparse): the collector would walk them over
    and over while they are made (~20 ms of `show` and `test`). As the program
    (``freeze``), they are then kept out of later collections too.
    """
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (never raises, never prints a traceback)."""
    with contextlib.suppress(AttributeError, ValueError):
        # Undecodable or unprintable text must not crash the output.
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        sys.stderr.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    with _starting_up(freeze=argv is None):
        parser = build_parser()
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        ctx = Context(args)
        handler: Handler = getattr(args, "handler", run_tui_command)
        # Every command but --help needs the settings models: built here, collector off.
        import transports.settings  # noqa: F401
    try:
        _check_path_options(args)
        return handler(ctx)
    except CliError as exc:
        if ctx.json:
            ctx.record({"type": "error", "exit": exc.code, "message": str(exc)})
        ctx.warn(str(exc))
        return exc.code
    except KeyboardInterrupt:
        ctx.warn("cancelled")
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader went away (`smtpdesk log | head`): stop quietly, as `git log | head`
        # does; the rest of the output (and Python's flush at exit) goes nowhere.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # the last resort: one line, no traceback
        if os.environ.get("SMTPDESK_DEBUG"):
            raise
        ctx.warn(f"unexpected error: {type(exc).__name__}: {exc} (SMTPDESK_DEBUG=1 shows more)")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
