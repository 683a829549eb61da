"""GitHub: your profile, starred repositories, followers, gists, and public events by day.

Needs GITHUB_TOKEN (a fine-grained token with read-only access is enough) and
GITHUB_USERNAME. GitHub allows 5,000 requests an hour for a token and asks clients not to
send requests concurrently, so at most one is in flight. Lists follow every ``Link`` page.
Events keep only the latest 300: the standard fetch takes the newest page; the history walk
pages back from page 2 until an empty page or the 422 GitHub sends past that limit.
"""

from apigetter.contract import (
    DAY,
    HOUR,
    Api,
    Endpoint,
    Limit,
    LinkHeaderPager,
    PageWalk,
    Since,
    TokenAuth,
)

API = Api(
    name="github",
    base_url="https://api.github.com",
    auth=TokenAuth("GITHUB_TOKEN"),
    headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
    limits=(Limit(5000, per_seconds=HOUR),),
    max_in_flight=1,
    endpoints=(
        Endpoint("user", "users/{GITHUB_USERNAME}", every=DAY),
        Endpoint(
            "starred",
            "user/starred",
            every=DAY,
            params={"per_page": 100},
            paginator=LinkHeaderPager(),
        ),
        Endpoint(
            "followers",
            "user/followers",
            every=DAY,
            params={"per_page": 100},
            paginator=LinkHeaderPager(),
        ),
        Endpoint(
            "gists",
            "gists",
            every=6 * HOUR,
            # Gists updated since the last success; the first run takes all of them.
            params=Since("since", fmt="iso", extra={"per_page": 100}),
            paginator=LinkHeaderPager(),
            day_key="created_at",
            id_key="id",
        ),
        Endpoint(
            "events",
            "users/{GITHUB_USERNAME}/events",
            every=6 * HOUR,
            params={"per_page": 100},
            day_key="created_at",
            id_key="id",
            history=PageWalk(start_page=2, size=100, end_statuses=(422,), date_field="created_at"),
        ),
    ),
)
