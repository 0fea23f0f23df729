"""Tests of the HTTP relay transport against the sandbox relay and small test servers."""
