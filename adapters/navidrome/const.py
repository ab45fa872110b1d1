"""Constants of the Subsonic / OpenSubsonic protocol as the Navidrome adapter uses it (hosts.md §2)."""

from __future__ import annotations

API_VERSION = "1.16.1"  # sent as v=; Navidrome and supysonic accept clients that announce a newer version
CLIENT_NAME = "sonantica"  # c=: one constant name, so Navidrome keeps one player record (ReportRealPath lives there)
RESPONSE_KEY = "subsonic-response"
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_ERROR_TEXT_CHARS = 300
SALT_BYTES = 12
FORM_POST_MIN_IDS = 50  # playlists with more song ids are sent as a form POST (URLs stay short)
DEFAULT_PAGE_SIZE = 500

# Subsonic error codes (http://www.subsonic.org/pages/api.jsp, OpenSubsonic errors).
ERROR_GENERIC = 0
ERROR_MISSING_PARAMETER = 10
ERROR_WRONG_CREDENTIALS = 40
ERROR_TOKEN_AUTH_UNSUPPORTED = 41
ERROR_AUTH_MECHANISM_UNSUPPORTED = 42
ERROR_NOT_AUTHORIZED = 50
ERROR_NOT_FOUND = 70
# Answers to a salted token that mean "send the password instead": Navidrome's LDAP users (41), OpenSubsonic
# servers without token support (42), and servers such as supysonic that require p= and report it missing (10).
TOKEN_FALLBACK_ERRORS = frozenset(
    {ERROR_MISSING_PARAMETER, ERROR_TOKEN_AUTH_UNSUPPORTED, ERROR_AUTH_MECHANISM_UNSUPPORTED}
)
AUTH_ERRORS = frozenset({ERROR_WRONG_CREDENTIALS, ERROR_NOT_AUTHORIZED}) | TOKEN_FALLBACK_ERRORS

SERVER_TYPE_NAVIDROME = "navidrome"
REPORT_REAL_PATH_FIX = (
    "Navidrome reports made-up paths because Report Real Path is off for the 'sonantica' player: in Navidrome's "
    "web UI open Players, edit the player named 'sonantica', tick 'Report Real Path' and save (or start Navidrome "
    "with ND_SUBSONIC_DEFAULTREPORTREALPATH=true before the sidecar first connects), then run 'sonantica host check'"
)
