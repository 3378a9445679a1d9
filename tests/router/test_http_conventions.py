"""Voedger's HTTP conventions, request by request (after pkg/sys/it's HTTP conventions and its
general HTTP scenarios): what a query or command that fails after its work answers, the 400s
of API v1 requests that name no function the server can run, the token in a cookie, and the
WSID of a URL.

The application is the one of ``test_voedger_answers.py`` (``answers/``): its ``Echo`` query
answers a row and then fails, its ``Fail`` command always fails.
"""

from __future__ import annotations

from urllib.parse import quote

from tests.router.test_voedger_answers import LIBRARY, V1, V2, Env, env, error

__all__ = ["env"]  # the fixture, shared with test_voedger_answers.py


async def test_a_query_that_fails_after_a_row_answers_the_row_then_the_error(env: Env) -> None:
    # TestBasicUsage_HTTPConventions "query": the row went out with a 200, so the error follows it
    body = {"args": {"Text": "world"}, "elements": [{"fields": ["Text"]}]}
    r = await env.client.post(f"{V1}/q.answers.Echo", json=body, headers=env.auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    answer = r.json()
    assert answer["sections"] == [{"type": "", "elements": [[[["world"]]]]}]
    assert answer["sys.Error"]["HTTPStatus"] == 500 and "test error" in answer["sys.Error"]["Message"]
    assert list(answer) == ["sections", "sys.Error"]
    # a filter that leaves no row: nothing went out, the error is the answer
    body["filters"] = [{"expr": "eq", "args": {"field": "Text", "value": "other"}}]
    message = error(await env.client.post(f"{V1}/q.answers.Echo", json=body, headers=env.auth), 500, "test error")
    assert message == answer["sys.Error"]["Message"]


async def test_api_v2_reads_of_arrays_stream_their_results_then_the_error(env: Env) -> None:
    # Voedger's query processor answers a query, a view or a collection as a stream
    # {"results":[...]}: once a result went out the status is 200 and a failure follows the
    # results as "error"; a failure before any result is {"results":[],"error":{...}} with its
    # status. A document's answer is one object, and so is its error.
    args = quote('{"Text":"world"}')
    r = await env.client.get(f"{V2}/queries/answers.Echo?args={args}", headers=env.auth)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert list(answer) == ["results", "error"] and answer["results"] == [{"Text": "world"}], answer
    assert answer["error"]["status"] == 500 and "test error" in answer["error"]["message"], answer
    where = quote('{"Text":"other"}')
    r = await env.client.get(f"{V2}/queries/answers.Echo?args={args}&where={where}", headers=env.auth)
    assert r.status_code == 500 and r.json() == {"results": [], "error": answer["error"]}, r.text
    r = await env.client.get(f"{V2}/queries/answers.Nope", headers=env.auth)
    assert r.status_code == 400 and list(r.json()) == ["results", "error"], r.text
    assert r.json()["error"]["status"] == 400 and r.json()["results"] == [], r.text
    r = await env.client.get(f"{V2}/docs/answers.Nope/1", headers=env.auth)
    assert r.status_code == 400 and set(r.json()) == {"status", "message"}, r.text
    # the router's own refusals, before the query processor, stay plain
    r = await env.client.get("/api/v2/apps/test/answers/workspaces/abc/queries/answers.Echo", headers=env.auth)
    assert r.status_code == 400 and set(r.json()) == {"status", "message"}, r.text


async def test_a_command_that_fails_is_a_500_with_no_qname_or_data(env: Env) -> None:
    # TestBasicUsage_HTTPConventions "command"
    r = await env.cmd("answers.Fail", {"args": {"Text": "1"}})
    error(r, 500, "test error")
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"sys.Error"} and set(r.json()["sys.Error"]) == {"HTTPStatus", "Message"}


async def test_requests_that_name_no_function(env: Env) -> None:
    # Test400BadRequests, in Voedger's words
    for resource, text in (
        ("q.unknown", "wrong function name: q.unknown"),
        ("a", "wrong function name: a"),
        ("c.sys", "wrong function name: c.sys"),
        ("x.test.test", 'wrong function mark "x" for function test.test'),
    ):
        error(await env.client.post(f"{V1}/{resource}", content=b"", headers=env.auth), 400, text)
    r = await env.client.post(f"/api/un/known/{LIBRARY}/c.sys.CUD", content=b"", headers=env.auth)
    error(r, 400, "unknown app un/known")
    r = await env.client.post(f"/api/un/known/{LIBRARY}/x.bad", content=b"", headers=env.auth)
    error(r, 400, "unknown app un/known")  # the application is looked at first


async def test_a_token_in_the_authorization_cookie(env: Env) -> None:
    # TestQueryCookiesAuth, TestBasicUsage_Persistent: the cookie's value is URL-unescaped, the
    # header wins over it, and a value that cannot be unescaped is a 400
    token = env.auth["Authorization"].removeprefix("Bearer ")
    count = {"args": {"Total": 1}}
    for value in (f"Bearer {token}", f"Bearer%20{token}", f"Bearer+{token}"):
        cookie = {"Cookie": f"Authorization={value}"}
        r = await env.client.post(f"{V1}/c.answers.Count", json=count, headers=cookie)
        assert r.status_code == 200, (value, r.text)
        r = await env.client.get(f"{V2}/queries/sys.Echo?args=" + quote('{"Text":"Hello world"}'), headers=cookie)
        assert r.status_code == 200 and r.json() == {"results": [{"Res": "Hello world"}]}, (value, r.text)
    headers = {"Authorization": "Bearer wrong", "Cookie": f"Authorization=Bearer%20{token}"}
    error(await env.client.post(f"{V1}/c.answers.Count", json=count, headers=headers), 401)
    r = await env.client.post(f"{V1}/c.answers.Count", json=count, headers={"Cookie": "Authorization=Bearer%zz"})
    error(r, 400, 'failed to unescape cookie value "Bearer%zz"')


async def test_workspace_ids_of_the_url(env: Env) -> None:
    # the router's WSID: 0 is the first pseudo WSID (an application workspace answers it, as for
    # 1), a number beyond 63 bits is a 400 in Voedger's words
    echo = {"args": {"Text": "hi"}, "elements": [{"fields": ["Res"]}]}
    for wsid in (0, 1):
        r = await env.client.post(f"/api/test/answers/{wsid}/q.sys.Echo", json=echo)
        assert r.status_code == 200 and r.json()["sections"][0]["elements"] == [[[["hi"]]]], (wsid, r.text)
    big = str(2**63)
    for wsid, text in (
        (big, f'invalid wsid: failed to cast {big} to WSID: strconv.ParseInt: parsing "{big}": value out of range'),
        ("-5", "invalid wsid: number overflow: -5 to WSID"),
        ("1x", 'invalid wsid: failed to cast 1x to WSID: strconv.ParseInt: parsing "1x": invalid syntax'),
    ):
        error(await env.client.post(f"/api/test/answers/{wsid}/q.sys.Echo", json=echo), 400, text)
        r = await env.client.get(f"/api/v2/apps/test/answers/workspaces/{wsid}/queries/sys.Echo")
        error(r, 400, text)
        error(await env.client.post(f"/api/un/known/{wsid}/q.sys.Echo", json=echo), 400, text)  # before the app
