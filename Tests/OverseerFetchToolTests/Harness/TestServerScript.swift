/// The Python source of the test HTTP server (see TestServer).
let testServerScript = #"""
# The local HTTP server of the overseerd-fetch tests. argv[1]: a directory where it writes
# the bytes it serves (payload.bin, linux.bin, ...) and their SHA-256 (NAME.sha256) for the
# tests to compare. Prints its HTTP and HTTPS ports on the first line; exits when its stdin closes.
import gzip, hashlib, json, os, sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

FIXTURES = sys.argv[1]
ETAG = '"v1-5f3a"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
RELEASE_ETAG = 'W/"release-7"'

def fixture(name, data):
    with open(os.path.join(FIXTURES, name), "wb") as f:
        f.write(data)
    with open(os.path.join(FIXTURES, name + ".sha256"), "w") as f:
        f.write(hashlib.sha256(data).hexdigest())
    return data

PAYLOAD = fixture("payload.bin", os.urandom(300_000))
PAYLOAD_GZ = gzip.compress(PAYLOAD)
LINUX = fixture("linux.bin", b"\x7fELF" + os.urandom(70_000))
DARWIN = fixture("darwin.bin", b"\xcf\xfa\xed\xfe" + os.urandom(50_000))
BLOCK = os.urandom(1 << 20)
STOP = threading.Event()

def big_chunks(size):
    while size > 0:
        piece = BLOCK[: min(size, len(BLOCK))]
        size -= len(piece)
        yield piece

def release_json(base, api):
    # Shaped like api.github.com's answer: nested objects, escapes, odd spacing.
    assets = [
        ("tool-1.2.0-darwin-arm64", "/assets/darwin"),
        ("tool-1.2.0-linux-x86_64", "/assets/linux"),
        ("tool-1.2.0-linux-x86_64.sha256", "/assets/linux.sha256"),
    ]
    if api == "/github-noside":
        assets = assets[:2]
    body = {
        "url": base + api + "/repos/acme/tool/releases/1",
        "tag_name": "v1.2.0",
        "name": "Tool \"1.2.0\" \u00e9\u00e8 \U0001F680",
        "body": "line one\nline two\t{\"not\": [\"an asset\"]}\\",
        "draft": False, "prerelease": False, "id": 1, "score": -1.5e3, "x": None,
        "author": {"login": "acme-bot", "assets": []},
        "assets": [
            {"name": name, "size": 1, "uploader": {"login": "ci"}, "browser_download_url": base + path}
            for name, path in assets
        ],
    }
    text = json.dumps(body, indent=1, ensure_ascii=True)
    return text.replace('"browser_download_url": "', '"browser_download_url" :\r\n\t"').encode()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def conditional(self, etag, body, extra=()):
        validators = [("ETag", etag), ("Last-Modified", LAST_MODIFIED)]
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (inm is not None and inm == etag) or (inm is None and ims == LAST_MODIFIED):
            self.send(304, headers=validators)
        else:
            self.send(200, body, validators + list(extra))

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        base = "http://%s:%d" % self.server.server_address[:2]
        if path in ("/bin", "/nosidecar", "/gone/bin"):
            self.conditional(ETAG, PAYLOAD, [("Content-Type", "application/octet-stream")])
        elif path == "/bin.sha256":
            self.send(200, (hashlib.sha256(PAYLOAD).hexdigest() + "  bin\n").encode())
        elif path == "/bin.minisig":
            self.send(200, b"untrusted comment: signature from minisign secret key\nRWQAAAAA\n")
        elif path == "/gone/bin.sha256":
            self.send(500, b"sidecar store down")
        elif path == "/huge/bin":
            self.send(200, PAYLOAD)
        elif path == "/huge/bin.sha256":
            self.send(200, b"0" * 70_000)
        elif path == "/ce/bin":
            if "gzip" not in self.headers.get("Accept-Encoding", ""):
                self.send(406, b"expected Accept-Encoding: gzip")
            else:
                self.send(200, PAYLOAD_GZ, [("Content-Encoding", "gzip"), ("ETag", ETAG)])
        elif path == "/bin.gz":
            self.send(200, PAYLOAD_GZ, [("Content-Type", "application/gzip")])
        elif path == "/ce/bin.gz":
            # Apache's AddEncoding: the .gz file itself sent as Content-Encoding: gzip.
            self.send(200, PAYLOAD_GZ, [("Content-Encoding", "gzip")])
        elif path == "/double/bin.gz":
            self.send(200, gzip.compress(PAYLOAD_GZ), [("Content-Encoding", "gzip")])
        elif path == "/cut/bin.gz":
            self.send(200, PAYLOAD_GZ[: len(PAYLOAD_GZ) // 2])
        elif path == "/plain/bin.gz":
            self.send(200, b"this is not gzip data at all")
        elif path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            self.send(302, headers=[("Location", "/redirect/%d" % (n - 1) if n > 1 else base + "/bin")])
        elif path == "/loop":
            self.send(302, headers=[("Location", "/loop")])
        elif path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD) + 1000))
            self.end_headers()
            self.wfile.write(PAYLOAD)
            self.wfile.flush()
            self.close_connection = True
        elif path == "/error500":
            self.send(500, b"<html>boom</html>", [("Content-Type", "text/html")])
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            if "announce" in params:
                print("stalled", flush=True)
            STOP.wait(30)
            self.close_connection = True
        elif path == "/endless":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                while True:
                    self.wfile.write(BLOCK[:65536])
            except OSError:
                pass
        elif path == "/big":
            size = int(params["size"])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for piece in big_chunks(size):
                self.wfile.write(piece)
        elif path == "/big.sha256":
            digest = hashlib.sha256()
            for piece in big_chunks(int(params["size"])):
                digest.update(piece)
            self.send(200, digest.hexdigest().encode())
        elif path in ("/github", "/github-private", "/github-noside") or path.startswith(("/github/", "/github-private/", "/github-noside/")):
            api, _, rest = path[1:].partition("/")
            api = "/" + api
            if rest != "repos/acme/tool/releases/latest":
                self.send(404, b'{"message": "Not Found", "documentation_url": "https://docs.github.com"}')
            elif self.headers.get("Accept") != "application/vnd.github+json" or self.headers.get("User-Agent") != "overseerd-fetch":
                self.send(400, b'{"message": "missing Accept or User-Agent"}')
            elif api == "/github-private" and self.headers.get("Authorization") != "Bearer test-token":
                self.send(401, b'{"message": "Bad credentials"}')
            else:
                self.conditional(RELEASE_ETAG, release_json(base, api), [("Content-Type", "application/json")])
        elif path == "/assets/linux":
            if self.headers.get("Authorization"):
                self.send(400, b"the token must not reach the asset host")
            else:
                self.send(200, LINUX, [("ETag", '"asset-etag"')])
        elif path == "/assets/linux.sha256":
            self.send(200, (hashlib.sha256(LINUX).hexdigest() + "  tool-1.2.0-linux-x86_64\n").encode())
        elif path == "/assets/darwin":
            self.send(200, DARWIN)
        else:
            self.send(404, b"no such file")

class Server(ThreadingHTTPServer):
    daemon_threads = True

server = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
# The same server over TLS with a self-signed certificate (0 when openssl is missing).
tls_port = 0
try:
    import ssl, subprocess
    key, cert = os.path.join(FIXTURES, "key.pem"), os.path.join(FIXTURES, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-days", "1", "-keyout", key, "-out", cert], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls_server = Server(("127.0.0.1", 0), Handler)
    tls_server.socket = context.wrap_socket(tls_server.socket, server_side=True)
    threading.Thread(target=tls_server.serve_forever, daemon=True).start()
    tls_port = tls_server.server_address[1]
except (OSError, subprocess.CalledProcessError):
    pass
print(server.server_address[1], tls_port, flush=True)
sys.stdin.read()
STOP.set()
os._exit(0)
"""#
