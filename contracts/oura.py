"""Oura (API v2): personal info, the daily and detail collections by day, and heart rate.

Needs OURA_CLIENT_ID and OURA_CLIENT_SECRET (an API application at
https://cloud.ouraring.com/oauth/applications), then ``apigetter authorize oura`` once
(or OURA_REFRESH_TOKEN). Oura's refresh tokens are single-use: the latest one lives in
the store. A legacy personal access token still works: set OURA_TOKEN instead.

Oura allows 5,000 requests per 5 minutes. Every collection is paged by ``next_token``.
Standard fetches cover the days since the last success (30 days on the first run; heart
rate 3 days, at most 30); history walks go back window by window (30 days, heart rate 10)
until ``origin_date`` and end there.
"""

from datetime import timedelta

from apigetter.contract import (
    DAY,
    HOUR,
    MINUTE,
    Api,
    CursorPager,
    Endpoint,
    Limit,
    OAuth2Refresh,
    Since,
    WindowWalk,
)

COLLECTIONS = (
    "daily_activity",
    "daily_readiness",
    "daily_sleep",
    "daily_spo2",
    "daily_stress",
    "sleep",
    "sleep_time",
    "workout",
)


def collection(name: str) -> Endpoint:
    """A collection of documents that each belong to one ``day``."""
    return Endpoint(
        name,
        f"v2/usercollection/{name}",
        every=6 * HOUR,
        params=Since("start_date", fmt="date", end_param="end_date", first=timedelta(days=30)),
        items="data",
        paginator=CursorPager("next_token", "next_token"),
        day_key="day",
        id_key="id",
        history=WindowWalk(days=30),
    )


API = Api(
    name="oura",
    base_url="https://api.ouraring.com",
    auth=OAuth2Refresh(
        token_url="oauth/token",
        authorize_url="https://cloud.ouraring.com/oauth/authorize",
        client_id="OURA_CLIENT_ID",
        client_secret="OURA_CLIENT_SECRET",
        refresh_token="OURA_REFRESH_TOKEN",
        client_auth="body",
        scope="email personal daily heartrate workout session spo2",
        redirect_port=8766,  # register http://127.0.0.1:8766/callback with the application
        access_token="OURA_TOKEN",
    ),
    limits=(Limit(5000, per_seconds=5 * MINUTE),),
    endpoints=(
        Endpoint("personal_info", "v2/usercollection/personal_info", every=DAY),
        *(collection(name) for name in COLLECTIONS),
        Endpoint(
            "heartrate",
            "v2/usercollection/heartrate",
            every=6 * HOUR,
            params=Since(
                "start_datetime",
                fmt="datetime",
                end_param="end_datetime",
                first=timedelta(days=3),
                max_span=timedelta(days=30),
            ),
            items="data",
            paginator=CursorPager("next_token", "next_token"),
            max_pages=100,
            day_key="timestamp",
            id_key="timestamp",
            history=WindowWalk(
                days=10, start_param="start_datetime", end_param="end_datetime", datetimes=True
            ),
        ),
    ),
)
