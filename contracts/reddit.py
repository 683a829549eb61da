"""Reddit: your account, karma, trophies and preferences, and your comments and posts by day.

Needs REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (a "web app" at
https://www.reddit.com/prefs/apps with redirect URI http://127.0.0.1:8765/callback),
REDDIT_USERNAME, then ``apigetter authorize reddit`` once (or REDDIT_REFRESH_TOKEN).

Reddit allows 100 requests a minute per OAuth client and throttles generic user agents,
so every request names apigetter and the account. Listings are paged with the ``after``
cursor: the standard fetch takes the newest 100, the history walk pages back one page per
chunk until Reddit's listing ends (about 1,000 items) or ``origin_date``.
"""

from apigetter import __version__
from apigetter.contract import (
    DAY,
    HOUR,
    MINUTE,
    Api,
    CursorWalk,
    Endpoint,
    Limit,
    OAuth2Refresh,
)

LISTING = {"limit": 100, "raw_json": 1}


def listing(name: str) -> Endpoint:
    """A Listing of the user's things, newest first, split by day of creation."""
    return Endpoint(
        name,
        f"user/{{REDDIT_USERNAME}}/{name}",
        every=6 * HOUR,
        params=LISTING,
        items="data.children",
        day_key="data.created_utc",
        id_key="data.name",
        history=CursorWalk(
            param="after",
            cursor_field="data.after",
            date_field="data.created_utc",
            extra=LISTING,
        ),
    )


API = Api(
    name="reddit",
    base_url="https://oauth.reddit.com",
    auth=OAuth2Refresh(
        token_url="https://www.reddit.com/api/v1/access_token",
        authorize_url="https://www.reddit.com/api/v1/authorize",
        client_id="REDDIT_CLIENT_ID",
        client_secret="REDDIT_CLIENT_SECRET",
        refresh_token="REDDIT_REFRESH_TOKEN",
        client_auth="basic",
        scope="identity history mysubreddits",
        authorize_params={"duration": "permanent"},
        redirect_port=8765,
    ),
    # Reddit's required form: <platform>:<app ID>:<version> (by /u/<username>).
    headers={"User-Agent": f"python:apigetter:{__version__} (by /u/{{REDDIT_USERNAME}})"},
    limits=(Limit(100, per_seconds=MINUTE),),
    endpoints=(
        Endpoint("me", "api/v1/me", every=DAY),
        Endpoint("karma", "api/v1/me/karma", every=DAY),
        Endpoint("trophies", "api/v1/me/trophies", every=DAY),
        Endpoint("prefs", "api/v1/me/prefs", every=DAY),
        listing("comments"),
        listing("submitted"),
    ),
)
