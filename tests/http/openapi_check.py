#!/usr/bin/python3
"""openapi_check.py - docs/openapi.yaml is a valid OpenAPI 3.1 document and
describes what the real daemon answers.

  openapi_check.py SPEC                        the document alone
  openapi_check.py SPEC --base URL --token T --pid PID
                                               and a running luapoold

The document alone: validated against the OpenAPI 3.1 schema
($OPENAPI_SCHEMA: the OpenAPI Initiative's 3.1 schema, which
`make check-openapi` installs from npm) with jsonschema; every Schema Object checked against
JSON Schema 2020-12; every $ref resolves; path parameters declared;
operationIds unique; the problem codes are exactly those of
src/http/problem.c's table, each under a response of its status.

With a daemon (tests/http/openapi.sh starts one; this script starts
nothing): one request per endpoint and per error kind it can provoke.
Each answer's status must be documented for its path and method (404 and
405 for paths and methods the document does not have), its documented
headers present and well formed, and no API header (Allow, Retry-After,
...) sent undocumented; its body must validate against the schema of its
status and media type.  A request the server accepts must validate against
the document's request schema, and the ones it refuses for their shape must
not.  Every operation of the document must have been exercised.  The last
case sends PID SIGTERM while jobs are in flight (503 shutting_down).

Only the Debian packages python3-jsonschema and python3-yaml are needed.
"""
import http.client
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
try:
    import jsonschema
    import yaml
except ImportError as e:
    sys.exit("openapi: FAILED: %s (scripts/install-deps.sh installs "
             "python3-jsonschema and python3-yaml)" % e)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The OpenAPI Initiative's 3.1 schema, from npm (see check-openapi in the
# Makefile): never a copy in this repository.
META_SCHEMA = os.environ.get("OPENAPI_SCHEMA", "")
PROBLEM_TABLE = os.path.join(ROOT, "src", "http", "problem.c")
METHODS = ["get", "head", "put", "post", "delete", "options", "patch", "trace"]
# Headers the API gives a meaning to: sent only where documented.
API_HEADERS = ["X-Request-Id", "Server-Timing", "Retry-After", "WWW-Authenticate", "Allow"]

failures = []


def fail(what):
    failures.append(what)
    print("openapi: FAILED: " + what)


# The document ---------------------------------------------------------------

def resolve(spec, node):
    """node with a $ref followed (in this document only)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise KeyError("external $ref " + ref)
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        if seen > 20:
            raise KeyError("$ref loop at " + ref)
    return node


def walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def validator_for(spec, schema):
    """A 2020-12 validator of schema whose '#/...' refs point into spec."""
    cls = jsonschema.Draft202012Validator
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
        registry = Registry().with_resource("urn:openapi", Resource(spec, DRAFT202012))
        wrapped = dict(schema)
        wrapped.setdefault("$id", "urn:openapi")
        return cls(wrapped, registry=registry)
    except ImportError:	# jsonschema before 4.18 (Debian 12 has 4.10)
        return cls(schema, resolver=jsonschema.RefResolver("", spec))


def schemas_in(spec):
    """Every Schema Object: components/schemas and those inline in
    parameters, headers, request bodies and responses."""
    for name, s in spec.get("components", {}).get("schemas", {}).items():
        yield "components/schemas/" + name, s
    for path, node in walk(spec):
        if "schema" in node and isinstance(node["schema"], dict) and \
                path[:2] != ("components", "schemas"):
            yield "/".join(map(str, path)) + "/schema", node["schema"]


def problem_table():
    """{code: status} from src/http/problem.c's table."""
    text = open(PROBLEM_TABLE, encoding="utf-8").read()
    return {c: int(s) for c, s in re.findall(r'\{ "([a-z0-9_]+)", (\d{3}), "', text)}


def check_document(spec):
    meta = json.load(open(META_SCHEMA, encoding="utf-8"))
    for e in sorted(jsonschema.Draft202012Validator(meta).iter_errors(spec), key=str):
        fail("not OpenAPI 3.1 at /%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:300]))
    for path, node in walk(spec):
        if "$ref" in node and isinstance(node["$ref"], str):
            try:
                resolve(spec, node)
            except (KeyError, TypeError) as e:
                fail("/%s: $ref %s does not resolve (%s)" % ("/".join(map(str, path)), node["$ref"], e))
    for where, schema in schemas_in(spec):
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            fail("%s is not a JSON Schema: %s" % (where, e.message[:300]))
    operation_ids = {}
    for template, item in spec.get("paths", {}).items():
        wanted = set(re.findall(r"\{([^}]+)\}", template))
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [resolve(spec, p) for p in item.get("parameters", []) + op.get("parameters", [])]
            declared = {p["name"] for p in params if p.get("in") == "path"}
            if wanted != declared:
                fail("%s %s: path parameters %s, declared %s" % (method, template, sorted(wanted), sorted(declared)))
            oid = op.get("operationId")
            if oid in operation_ids:
                fail("operationId %s twice (%s)" % (oid, template))
            operation_ids[oid] = template
    # The codes: the document's enum is problem.c's table, and a code
    # is listed under the responses of its own status.
    table = problem_table()
    enum = resolve(spec, {"$ref": "#/components/schemas/ProblemCode"})["enum"]
    for code in sorted(set(table) - set(enum)):
        fail("problem code %s (src/http/problem.c) is not in ProblemCode" % code)
    for code in sorted(set(enum) - set(table)):
        fail("ProblemCode %s is not in src/http/problem.c's table" % code)
    listed = {}
    for name, resp in spec["components"]["responses"].items():
        schema = resp.get("content", {}).get("application/problem+json", {}).get("schema", {})
        for part in schema.get("allOf", []):
            props = part.get("properties", {})
            status = props.get("status", {}).get("const")
            codes = props.get("code", {}).get("enum") or \
                ([props["code"]["const"]] if "const" in props.get("code", {}) else [])
            for code in codes:
                listed.setdefault(code, set()).add(status)
    for code, status in table.items():
        if code in ("unauthorized",):	# one status, its own response
            continue
        if listed.get(code) != {status}:
            fail("problem code %s (status %d) is listed under statuses %s" % (code, status, sorted(listed.get(code, []))))
    return table


# The daemon -----------------------------------------------------------------

class Answer:
    def __init__(self, method, path, status, headers, body):
        self.method, self.path, self.status = method, path, status
        self.headers, self.body = headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Daemon:
    def __init__(self, base, token):
        url = urllib.parse.urlsplit(base)
        self.host, self.port, self.token = url.hostname, url.port, token

    def connect(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def send(self, method, path, body=None, headers=None, auth=True, conn=None,
             content_length=None):
        own = conn is None
        conn = conn or self.connect()
        try:
            h = dict(headers or {})
            if auth:
                h["Authorization"] = "Bearer " + self.token
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            if content_length is not None:	# headers only: the server must refuse first
                conn.putrequest(method, path)
                for k, v in h.items():
                    conn.putheader(k, v)
                conn.putheader("Content-Length", str(content_length))
                conn.endheaders()
            else:
                conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            return Answer(method, path, resp.status, resp.getheaders(), resp.read())
        finally:
            if own:
                conn.close()


def operation_for(spec, method, path):
    """(template, path item, operation or None); template None: no path.
    A path parameter must be an instance of its schema (a script name of
    65 characters is a path the document does not have)."""
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]*)", re.escape(template)) + "$"
        m = re.match(pattern, path)
        if not m:
            continue
        op = item.get(method.lower())
        params = [resolve(spec, p) for p in item.get("parameters", []) + (op or {}).get("parameters", [])]
        if all(validator_for(spec, p["schema"]).is_valid(urllib.parse.unquote(m.group(p["name"])))
               for p in params if p.get("in") == "path"):
            return template, item, op
    return None, None, None


def validate(spec, schema, value, what):
    errors = sorted(validator_for(spec, schema).iter_errors(value), key=str)
    for e in errors[:3]:
        fail("%s: %s at /%s" % (what, e.message[:300], "/".join(map(str, e.absolute_path))))
    return not errors


def check_answer(spec, a, exercised):
    what = "%s %s -> %d" % (a.method, a.path, a.status)
    template, item, op = operation_for(spec, a.method, urllib.parse.urlsplit(a.path).path)
    if template is None:
        response = spec["components"]["responses"]["NotFound"]
        if a.status != 404:
            fail("%s: a path the document does not have must be 404" % what)
    elif op is None:
        response = spec["components"]["responses"]["MethodNotAllowed"]
        documented = {m.upper() for m in METHODS if m in item}
        allow = {m.strip() for m in (a.header("Allow") or "").split(",")}
        if a.status != 405:
            fail("%s: a method the document does not have must be 405" % what)
        elif allow != documented:
            fail("%s: Allow: %s, the document has %s" % (what, a.header("Allow"), sorted(documented)))
    else:
        exercised.add((a.method.lower(), template))
        response = op["responses"].get(str(a.status))
        if response is None:
            fail("%s: status %d is not documented for %s %s" % (what, a.status, a.method, template))
            return
    response = resolve(spec, response)
    declared = {k.lower(): resolve(spec, v) for k, v in response.get("headers", {}).items()}
    for name, header in declared.items():
        value = a.header(name)
        if value is None:
            if header.get("required"):
                fail("%s: no %s header" % (what, name))
        elif "schema" in header:
            validate(spec, header["schema"], value, "%s: header %s %r" % (what, name, value))
    for name in API_HEADERS:
        if a.header(name) is not None and name.lower() not in declared:
            fail("%s: sends %s, which the document does not declare for it" % (what, name))
    content = response.get("content")
    ctype = a.header("Content-Type") or ""
    if a.method == "HEAD" or not content:
        if a.body:
            fail("%s: a body where the document has none" % what)
        return
    media = content.get(ctype) or content.get(ctype.split(";")[0].strip())
    if media is None:
        fail("%s: Content-Type %s, the document has %s" % (what, ctype, sorted(content)))
        return
    if "json" not in ctype:
        return
    try:
        body = a.json()
    except ValueError as e:
        fail("%s: body is not JSON: %s" % (what, e))
        return
    validate(spec, media["schema"], body, what + " body")
    if ctype.startswith("application/problem+json") and isinstance(body, dict):
        if body.get("status") != a.status:
            fail("%s: problem status %s" % (what, body.get("status")))
        if body.get("type") != "urn:luapoold:problem:%s" % body.get("code"):
            fail("%s: problem type %s for code %s" % (what, body.get("type"), body.get("code")))
        if "request_id" in body and body["request_id"] != a.header("X-Request-Id"):
            fail("%s: request_id %s, X-Request-Id %s" % (what, body["request_id"], a.header("X-Request-Id")))


def request_schema(spec, method, path):
    _, _, op = operation_for(spec, method, path)
    body = (op or {}).get("requestBody")
    return body and resolve(spec, body)["content"]["application/json"]["schema"]


HELLO = 'return ctx.message .. " from Lua"'
# method, path, body, expected status, expected code, options
CASES = [
    ("GET", "/healthz", None, 200, None, {"auth": False}),
    ("HEAD", "/healthz", None, 200, None, {}),
    ("GET", "/v1/info", None, 200, None, {"headers": {"X-Request-Id": "openapi-check-1"}}),
    ("HEAD", "/v1/info", None, 200, None, {}),
    ("GET", "/metrics", None, 200, None, {"auth": False}),
    ("HEAD", "/metrics", None, 200, None, {}),
    ("POST", "/v1/exec", {"source": HELLO, "context": {"message": "Hello"}}, 200, None, {}),
    ("POST", "/v1/exec", {"source": "return 1", "usage": True, "timeout_ms": 1000, "name": "u"}, 200, None, {}),
    ("POST", "/v1/exec", {"source": "print('hi', 1) log.warn('w') return 1"}, 200, None, {}),
    ("POST", "/v1/exec", {"source": "for i = 1, 1e5 do print(('x'):rep(100)) end"}, 200, None, {}),
    ("POST", "/v1/compile", {"source": HELLO, "name": "hello"}, 200, None, {}),
    ("PUT", "/v1/scripts/openapi-add", {"source": "return {sum = ctx.a + ctx.b}"}, 201, None, {}),
    ("PUT", "/v1/scripts/openapi-add", {"source": "return {sum = ctx.a + ctx.b}"}, 200, None, {}),
    ("GET", "/v1/scripts", None, 200, None, {}),
    ("HEAD", "/v1/scripts", None, 200, None, {}),
    ("GET", "/v1/scripts/openapi-add", None, 200, None, {}),
    ("HEAD", "/v1/scripts/openapi-add", None, 200, None, {}),
    ("POST", "/v1/scripts/openapi-add", {"context": {"a": 2, "b": 3}}, 200, None, {}),
    ("POST", "/v1/scripts/openapi-add", None, 422, "script_error", {}),
    ("DELETE", "/v1/scripts/openapi-add", None, 204, None, {}),
    ("GET", "/v1/scripts/openapi-add", None, 404, "unknown_script", {}),
    ("HEAD", "/v1/scripts/openapi-add", None, 404, None, {}),
    ("DELETE", "/v1/scripts/openapi-add", None, 404, "unknown_script", {}),
    ("POST", "/v1/scripts/openapi-add", {}, 404, "unknown_script", {}),
    ("PUT", "/v1/scripts/.hidden", {"source": "return 1"}, 400, "invalid_request", {}),
    # Problems.
    ("POST", "/v1/exec", b'{"source":', 400, "invalid_json", {}),
    ("POST", "/v1/exec", {"source": "return 1", "timeout_ms": 99999999}, 400, "invalid_request", {"spec_valid": True}),
    ("POST", "/v1/exec", {"context": {}}, 400, "invalid_request", {"spec_valid": False}),
    ("POST", "/v1/exec", {"source": "return 1", "bytecode": "AAAA"}, 400, "invalid_request", {"spec_valid": False}),
    ("POST", "/v1/exec", {"source": "return 1", "contxt": {}}, 400, "unknown_field", {"spec_valid": False}),
    ("POST", "/v1/exec", {"bytecode": "!!!"}, 400, "invalid_base64", {}),
    ("POST", "/v1/exec", {"bytecode": "aGVsbG8gd29ybGQ="}, 400, "invalid_bytecode", {}),
    ("POST", "/v1/compile", {"source": "return +", "name": "broken"}, 400, "compile_error", {}),
    ("POST", "/v1/exec", {"source": "return 1"}, 401, "unauthorized", {"auth": False}),
    ("GET", "/v1/info", None, 401, "unauthorized", {"auth": False}),
    ("GET", "/v1/nothing", None, 404, "not_found", {}),
    ("GET", "/v1/scripts/" + "x" * 65, None, 404, "not_found", {}),
    ("GET", "/v1/exec", None, 405, "method_not_allowed", {}),
    ("DELETE", "/healthz", None, 405, "method_not_allowed", {}),
    ("PATCH", "/v1/scripts/x", None, 405, "method_not_allowed", {}),
    ("POST", "/v1/exec", None, 413, "payload_too_large", {"content_length": 10 << 20}),
    ("POST", "/v1/exec", {"source": "local t = nil\nreturn t.x", "name": "demo"}, 422, "script_error", {}),
    ("POST", "/v1/exec", {"source": "print('x') error({code = 1, message = 'x'})"}, 422, "script_error", {}),
    ("POST", "/v1/exec", {"source": "return {items = {1, 2, 0/0}}"}, 422, "result_not_serializable", {}),
    ("POST", "/v1/exec", {"source": "local t = {} for i = 1, 1e9 do t[i] = i end"}, 422, "memory_limit_exceeded", {}),
    ("POST", "/v1/exec", {"source": "return string.rep('x', 1e6)"}, 422, "result_too_large", {}),
    ("POST", "/v1/exec", {"source": "while true do end", "timeout_ms": 50}, 504, "deadline_exceeded", {}),
]


def run_case(spec, d, case, exercised):
    method, path, body, status, code, opts = case
    a = d.send(method, path, body, headers=opts.get("headers"), auth=opts.get("auth", True),
               content_length=opts.get("content_length"))
    what = "%s %s -> %d" % (method, path, a.status)
    if status is not None and a.status != status:
        fail("%s: expected %d %s; body %s" % (what, status, code or "", a.body[:300]))
    if code and a.method != "HEAD":
        try:
            got = a.json().get("code")
        except ValueError:
            got = None
        if got != code:
            fail("%s: expected code %s, got %s" % (what, code, got))
    sent = opts.get("headers", {}).get("X-Request-Id")
    if sent and a.header("X-Request-Id") != sent:
        fail("%s: sent X-Request-Id %s, answered %s" % (what, sent, a.header("X-Request-Id")))
    schema = request_schema(spec, method, path) if isinstance(body, dict) else None
    if schema is not None:
        valid = not list(validator_for(spec, schema).iter_errors(body))
        expect = opts.get("spec_valid", True)	# refused for its shape: False
        if valid != expect:
            fail("%s: the document %s the request %s" % (what, "accepts" if valid else "refuses", json.dumps(body)[:200]))
    check_answer(spec, a, exercised)
    return a


def busy_workers(d):
    return d.send("GET", "/v1/info").json()["workers"]["busy"]


def queued_jobs(d):
    text = d.send("GET", "/metrics").body.decode()
    m = re.search(r"^luapoold_queue_depth (\d+)", text, re.M)
    return int(m.group(1)) if m else -1


def poll(what, predicate, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    fail("timed out waiting for " + what)
    return False


def check_overload_and_drain(spec, d, pid, exercised):
    """One worker, queue_depth 1: a running job, a queued one, then a third
    request is 503 overloaded; SIGTERM, and a request on a connection
    already open is 503 shutting_down while the two jobs drain."""
    kept = d.connect()
    check_answer(spec, d.send("GET", "/v1/info", conn=kept), exercised)
    answers = []
    spin = {"source": "while true do end", "timeout_ms": 1500}
    threads = [threading.Thread(target=lambda: answers.append(d.send("POST", "/v1/exec", spin)))]
    threads[0].start()
    poll("a busy worker", lambda: busy_workers(d) >= 1)
    threads.append(threading.Thread(target=lambda: answers.append(d.send("POST", "/v1/exec", spin))))
    threads[1].start()
    poll("a queued job", lambda: queued_jobs(d) >= 1)
    run_case(spec, d, ("POST", "/v1/exec", {"source": "return 1"}, 503, "overloaded", {}), exercised)
    os.kill(pid, signal.SIGTERM)
    a = None

    def draining():
        nonlocal a
        a = d.send("GET", "/v1/info", conn=kept)
        return a.status == 503
    if poll("503 shutting_down", draining):
        check_answer(spec, a, exercised)
        if a.json().get("code") != "shutting_down":
            fail("draining: code %s" % a.json().get("code"))
    for t in threads:
        t.join(10)
    for a in answers:
        check_answer(spec, a, exercised)


def main(argv):
    args = {"spec": argv[1]}
    for i in range(2, len(argv) - 1, 2):
        args[argv[i].lstrip("-")] = argv[i + 1]
    spec = yaml.safe_load(open(args["spec"], encoding="utf-8"))
    table = check_document(spec)
    print("openapi: %s: OpenAPI 3.1 schema, refs, schemas, %d problem codes checked"
          % (args["spec"], len(table)))
    if "base" in args:
        d = Daemon(args["base"], args["token"])
        exercised = set()
        for case in CASES:
            run_case(spec, d, case, exercised)
        codes = {c[4] for c in CASES if c[4]}
        if "pid" in args:
            check_overload_and_drain(spec, d, int(args["pid"]), exercised)
            codes |= {"overloaded", "shutting_down"}
        everything = {(m, t) for t, item in spec["paths"].items() for m in METHODS if m in item}
        for method, template in sorted(everything - exercised):
            fail("%s %s is never exercised" % (method.upper(), template))
        print("openapi: %d live answers checked; codes not provoked: %s"
              % (len(CASES), ", ".join(sorted(set(table) - codes)) or "none"))
    if failures:
        print("openapi: %d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
