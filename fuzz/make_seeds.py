#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ (committed; run again only to
change them). Realistic messages first, then edge cases. Separator between
messages of one input: 0x1e (see fuzz_common.h)."""
import json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SEP = b"\x1e"
USER = "8c3b6f7e-1d2a-4b5c-9e0f-a1b2c3d4e5f6"
OTHER = "11111111-2222-4333-8444-555555555555"
TOPIC = "realtime:shelf-" + USER
TABLES = ["context_blocks", "prompts", "dataset_projects", "prompt_projects"]
ID1 = "0f8a2c1e-5b7d-4e6f-8a9b-0c1d2e3f4a5b"
ID2 = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
FOLDER = "3c2b1a09-8f7e-4d6c-9b5a-493827161504"
STAMP = "2026-11-25T04:42:46.123456+00:00"


def mp(v):
    """A small msgpack encoder (str as str8/16/32, ints, floats, bin)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, str):
        b = v.encode("utf-8", "surrogateescape")
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, (list, tuple)):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def j(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()


def write(target, name, data):
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def req(msgid, method, *params):
    return mp([0, msgid, method, list(params)])


def note(method, *params):
    return mp([2, method, list(params)])


# --- rpc: what shelf.nvim's client.lua sends ---------------------------------
block = {"title": "Style guide", "content": "Use tabs.\n", "tags": ["go", "style"],
         "project_id": None}
prompt = {"title": "Review", "description": "Code review", "content": "Review {{code}}",
          "folder": "work", "tags": [], "project_id": FOLDER}
folder = {"name": "Work", "type": "prompts", "icon": "x", "parent_id": None}
write("rpc", "session", b"".join([
    req(1, "ping"), req(2, "status"),
    note("create", 1, "block", block), note("create", 2, "prompt", prompt),
    note("create", 3, "project", folder),
    note("create", 4, "block", {"title": "scratch", "temporary": True}),
    req(3, "get", "block", ID1), note("search", 11, "style", None),
    note("search", 12, "rev", "prompt", 50), note("cancel", 12),
    note("update", 5, "prompt", ID2, {"title": "Review 2", "tags": ["a"]}),
    note("delete", 6, "block", ID1), note("save_temp", 7, ID1), note("refresh", 8),
    note("login", 9, "ada@example.com", "ada-password"), note("logout", 10),
]))
write("rpc", "create_block", note("create", 1, "block", block))
write("rpc", "get_search", req(7, "get", "prompt", ID2) + note("search", 8, "x", "project"))
write("rpc", "nvim_error_event", note("nvim_error_event", 0, "Lua error: boom"))
write("rpc", "edge_types", b"".join([
    note("create", 1, "block", {"title": 3, "tags": {"a": 1}}),
    note("create", 2, "nope", {}), note("create", 3, "block", []),
    note("update", 4, "block", ID1, {}), note("create", 5, "block", {"title": "é😀\n\"q\"", "x": [1.5, -7, 2**63]}),
    req(9, "get", 1, 2), req(10, "unknown", 1), note("delete", 0, "block", ID1),
    mp([1, 3, None, "a response"]), mp([9, 1, 2]), mp("not an array"),
    req(11, b"get", "block", ID1),
]))
write("rpc", "edge_bigmap", note("create", 1, "block", {"k%d" % i: i for i in range(40)}))
deep = "x"
for _ in range(20):
    deep = [deep]
write("rpc", "edge_deep", note("create", 1, "block", {"title": "d", "tags": deep}))
write("rpc", "edge_bad_byte", req(1, "ping") + b"\xc1")
write("rpc", "edge_ext", note("create", 1, "block", {"title": "e"}).replace(b"\xa1e", b"\xd4\x01\x02"))
write("rpc", "edge_huge_header", b"\x94\x00\x01\xa4ping\xdd\xff\xff\xff\xff")
write("rpc", "edge_str32", note("search", 1, "q" * 300) + b"\x94\x00\x02\xdb\x00\x00\x00\x04ping\x90")

# --- realtime: Phoenix frames as the server sends them -------------------------
join_ok = ["1", "1", TOPIC, "phx_reply", {"status": "ok", "response": {"postgres_changes": [
    {"id": 101 + i, "event": "DELETE" if i % 2 else "*", "schema": "public", "table": TABLES[i // 2],
     **({} if i % 2 else {"filter": "user_id=eq." + USER})} for i in range(8)]}}]
cols = [{"name": "id", "type": "uuid"}, {"name": "title", "type": "text"}, {"name": "tags", "type": "_text"}]
rec = {"id": ID1, "user_id": USER, "title": "Style guide", "content": "Use tabs.", "tags": ["go"],
       "project_id": None, "created_at": STAMP, "updated_at": STAMP}


def change(typ, ids, table="context_blocks", record=rec, old=None, errors=None):
    data = {"schema": "public", "table": table, "commit_timestamp": "2026-11-25T04:42:47.000Z",
            "type": typ, "columns": cols, "errors": errors}
    if record is not None:
        data["record"] = record
    if old is not None:
        data["old_record"] = old
    return [None, None, TOPIC, "postgres_changes", {"ids": ids, "data": data}]


write("realtime", "session_v2", SEP.join(j(f) for f in [
    join_ok,
    [None, None, TOPIC, "system", {"channel": "shelf-" + USER, "extension": "postgres_changes",
                                   "message": "Subscribed to PostgreSQL", "status": "ok"}],
    change("INSERT", [101]), change("UPDATE", [101], old={"id": ID1}),
    change("DELETE", [102, 101], record=None, old={"id": ID1}),
    [None, "2", "phoenix", "phx_reply", {"status": "ok", "response": {}}],
    change("INSERT", [103], table="prompts", record=dict(rec, description="d", folder="f")),
    change("UPDATE", [101], errors=["Error 413: Payload Too Large"]),
]))
write("realtime", "session_v1", SEP.join(j(f) for f in [
    {"topic": TOPIC, "event": "phx_reply", "ref": "1", "join_ref": "1", "payload": join_ok[4]},
    {"topic": TOPIC, "event": "postgres_changes", "ref": None, "join_ref": None,
     "payload": change("INSERT", [101])[4]},
    {"ref": "2", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "topic": "phoenix"},
]))
write("realtime", "join_refused", j(["1", "1", TOPIC, "phx_reply", {"status": "error", "response": {
    "reason": "Invalid JWT Token"}}]))
write("realtime", "join_mismatch", j(["1", "1", TOPIC, "phx_reply", {"status": "ok", "response": {
    "postgres_changes": [{"id": 5, "event": "INSERT", "schema": "public", "table": "other"}]}}]))
write("realtime", "token_expired", SEP.join(j(f) for f in [
    join_ok,
    [None, None, TOPIC, "system", {"extension": "system", "status": "error",
                                   "message": "Token has expired 5 seconds ago", "channel": "x"}],
    ["1", "1", TOPIC, "phx_close", {}],
]))
write("realtime", "phx_error", SEP.join(j(f) for f in [join_ok, ["1", "3", TOPIC, "phx_error", {}]]))
write("realtime", "edge_frames", SEP.join([
    b"[]", b"{}", b"null", b"[1,2,3,4,5]", b'[null,null,"t","e",[]]', b'[1,2,"t","e",{}]',
    b'[1.5,1e300,"t","e",{}]', b'[true,"1","t","e",{}]', b'{"topic":"t","event":"e","payload":{}} x',
    b'[null,null,"' + TOPIC.encode() + b'","postgres_changes",{"ids":"x","data":{}}]',
    b'[null,null,"' + TOPIC.encode() + b'","postgres_changes",{"ids":[101],"data":{"type":7}}]',
    b'  [null , null ,"phoenix","phx_reply",{"status":"ok"}]  \n', b'["\\u0000","\\ud800","t","e",{}]',
    b'[' * 50 + b']' * 50, b'"\xff\xfe"', b'',
]))
write("realtime", "edge_numeric_refs", SEP.join(j(f) for f in [
    [1, 1, TOPIC, "phx_reply", join_ok[4]], [None, 2, "phoenix", "phx_reply", {"status": "ok", "response": {}}],
    change("INSERT", [101.0, 1e18, -1, "101"]),
]))

# --- records: a script of steps (see fuzz_records.c) --------------------------
def step(cmd, sub=None, arg=b""):
    if isinstance(arg, (dict, list)):
        arg = j(arg)
    elif isinstance(arg, str):
        arg = arg.encode()
    return cmd.encode() + (bytes([sub]) if sub is not None else b"") + arg


row_block = dict(rec)
row_prompt = dict(rec, id=ID2, description="Code review " * 30, folder="work", project_id=FOLDER)
row_folder = {"id": FOLDER, "user_id": USER, "name": "Work", "icon": "x", "parent_id": None,
              "folder_path": "/Work", "is_system": False, "created_at": STAMP, "updated_at": STAMP}
load = [  # the first load fetches every table whole
    step("0", None, [row_block]),   # context_blocks
    step("0", None, [row_prompt]),  # prompts
    step("0", None, []),            # dataset_projects
    step("0", None, [row_folder]),  # prompt_projects
]
refresh = [  # later refreshes compare stamps, then fetch what changed
    step("7", 0),
    step("0", None, [{"id": ID1, "updated_at": "2026-11-25T05:00:00+00:00"}]),
    step("0", None, [{"id": ID2, "updated_at": STAMP}]),
    step("0", None, []),
    step("0", None, [{"id": FOLDER, "updated_at": STAMP}, {"id": ID2}]),
    step("0", None, [dict(row_block, updated_at="2026-11-25T05:00:00+00:00", title="Changed")]),
]
write("records", "full_load", SEP.join(load + refresh))
write("records", "load_then_changes", SEP.join(load + [
    step("2", 0, {"schema": "public", "table": "context_blocks", "type": "UPDATE", "commit_timestamp": STAMP,
                  "record": dict(row_block, title="New"), "old_record": {"id": ID1}, "errors": None}),
    step("2", 2, {"type": "INSERT", "record": row_prompt, "errors": None}),
    step("2", 1, {"type": "DELETE", "old_record": {"id": ID1}}),
    step("2", 0, {"type": "UPDATE", "record": {"id": ID2, "user_id": USER}, "errors": None}),
    step("2", 0, {"type": "INSERT", "record": {"id": ID1, "user_id": USER, "title": "big"},
                  "errors": ["Error 413: Payload Too Large"]}),
    step("6", 0, ID1), step("6", 5, "style"),
]))
write("records", "actions", SEP.join(load + [
    step("3", 0, {"title": "New block", "content": "x", "tags": ["a"]}),
    step("0", None, [dict(row_block, id=ID2, title="New block")]),
    step("4", 1, [ID2, {"title": "Renamed", "folder": None}]),
    step("1", 11, {"message": "upstream down"}),
    step("5", 2, FOLDER),
    step("1", 6, {"code": "23503", "message": "fk", "details": None, "hint": None}),
    step("3", 0, {"title": "tmp", "temporary": True}), step("7", 3, ID1),
    step("7", 0), step("7", 1, "ada@example.com"), step("0", None, [{"id": USER, "email": "ada@example.com"}]),
    step("7", 5), step("7", 2), step("7", 4),
]))
write("records", "errors", SEP.join([
    step("1", 2, {"code": "PGRST301", "message": "JWT expired"}),
    step("1", 1, {"code": "42501", "message": "permission denied", "hint": None}),
    step("1", 9, "<html>500</html>"), step("1", 0, ""), step("1", 12, "[]"),
    step("0", None, "{\"not\":\"a list\"}"), step("0", None, "[1,\"x\",null,[]]"), step("0", None, ""),
]))
write("records", "other_user", SEP.join([
    step("0", None, [dict(row_block, user_id=OTHER), {"id": ID2, "updated_at": STAMP}]),
    step("2", 0, {"type": "INSERT", "record": dict(row_block, user_id=OTHER), "errors": None}),
    step("2", 0, {"type": "INSERT", "record": {"id": ID1}, "errors": None}),
    step("2", 9, {"type": "INSERT", "record": row_block, "errors": None}),
]))
write("records", "odd_rows", SEP.join([
    step("0", None, [{"id": ID1, "updated_at": 5}, {"id": 7}, ["x"], {"updated_at": STAMP}]),
    step("0", None, [{"id": "", "user_id": USER}, {"id": ID1, "user_id": USER, "title": "é😀\n\"",
                     "description": "é" * 150, "tags": "notalist", "content": 5}]),
    step("0", None, [{"id": ID2, "user_id": USER, "title": None, "description": "\xf0\x9f" * 120}]),
]))
write("records", "session_file", SEP.join([
    step("7", 7, {"access_token": "a", "refresh_token": "r", "user_id": USER, "email": "ada@example.com",
                  "expires_at": 1e12, "url": "http://127.0.0.1:54321"}),
    step("7", 7, {"refresh_token": "r", "user_id": "not-a-uuid"}),
    step("7", 7, b'{"refresh_token":"r","user_id":"' + USER.encode() + b'","url":"https://elsewhere.example"}'),
    step("7", 7), step("7", 7, b"\x00\x00garbage"),
]))
print("seeds written")
