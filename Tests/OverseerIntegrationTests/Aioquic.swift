import Foundation
import OverseerTestSupport

/// A python3 that imports aioquic (the HTTP/3 tests): the system's, else a venv
/// under ~/.cache/overseerd-tests made once with `pip install aioquic`. Nil
/// (said on one line) when neither can be had; under CI=true that throws.
enum Aioquic {
    static let python: Result<String?, HarnessError> = {
        func imports(_ python: String) -> Bool {
            guard let check = try? RunningProcess(pythonCommand(python) + ["-c", "import aioquic, cryptography"]) else { return false }
            return (try? check.waitForExit(timeout: 60)) == .exited(0)
        }
        func run(_ arguments: [String]) -> Bool {
            guard let process = try? RunningProcess(arguments) else { return false }
            return (try? process.waitForExit(timeout: 600)) == .exited(0)
        }
        // The python3 on PATH ("/usr/bin/env" stands for it), then Debian's.
        if imports("/usr/bin/env") { return .success("/usr/bin/env") }
        let system = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "/usr/bin/env"
        if system != "/usr/bin/env", imports(system) { return .success(system) }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
        let venv = home + "/.cache/overseerd-tests/aioquic-venv"
        let venvPython = venv + "/bin/python3"
        if !FileManager.default.isExecutableFile(atPath: venvPython) {
            try? FileManager.default.createDirectory(atPath: home + "/.cache/overseerd-tests", withIntermediateDirectories: true)
            _ = run(pythonCommand(system) + ["-m", "venv", venv])
        }
        if FileManager.default.isExecutableFile(atPath: venvPython), !imports(venvPython) {
            _ = run([venvPython, "-m", "pip", "install", "-q", "aioquic"])
        }
        if FileManager.default.isExecutableFile(atPath: venvPython), imports(venvPython) { return .success(venvPython) }
        let why = "aioquic is not importable by python3, and no venv with it could be made (python3-venv and PyPI are needed)"
        if ProcessInfo.processInfo.environment["CI"] == "true" { return .failure(HarnessError("CI=true, but \(why)")) }
        print("skipping the HTTP/3 tests: \(why)")
        return .success(nil)
    }()

    /// Writes the three scripts into `directory` and makes its certificate.
    static func prepare(in directory: String, python: String) throws {
        for (name, text) in [("server.py", serverScript), ("client.py", clientScript), ("cert.py", certificateScript)] {
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        let made = try RunningProcess(pythonCommand(python) + [directory + "/cert.py", directory]).waitForExit(timeout: 60)
        guard made == .exited(0) else { throw HarnessError("cert.py: \(made)") }
    }

    /// `python` as a command: `/usr/bin/env` stands for `env python3`.
    static func pythonCommand(_ python: String) -> [String] { python == "/usr/bin/env" ? ["/usr/bin/env", "python3"] : [python] }

    static let serverScript = #"""
# An HTTP/3 server (aioquic) on the UDP socket overseerd passes as fd 3:
# answers every request with its generation; READY=1 once serving; on SIGTERM
# it serves on for H3_DRAIN_SECONDS (its connections finish), then exits.
import asyncio, os, signal, socket, sys
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated

GENERATION = os.environ.get("OVERSEER_GENERATION", "0")

class Server(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = None

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for received in self.h3.handle_event(event):
            if isinstance(received, HeadersReceived):
                body = ("generation %s\n" % GENERATION).encode()
                self.h3.send_headers(received.stream_id, [(b":status", b"200"), (b"content-length", str(len(body)).encode())])
                self.h3.send_data(received.stream_id, body, end_stream=True)
        self.transmit()

def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)

async def main(cert, key):
    configuration = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, idle_timeout=60)
    configuration.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: QuicServer(configuration=configuration, create_protocol=Server),
                                        sock=socket.socket(fileno=3))
    stop = asyncio.Event()
    for signo in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signo, stop.set)
    notify("READY=1")
    await stop.wait()
    await asyncio.sleep(float(os.environ.get("H3_DRAIN_SECONDS", "30")))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""#

    static let clientScript = #"""
# An HTTP/3 client (aioquic): one QUIC connection to 127.0.0.1:PORT, a GET every
# 50 ms (3 s to answer), until stdin closes; a failed request counts and a new
# connection is made. Prints "connected" once, "request ok" or "request failed"
# for each request, then at the end one JSON line (with the slowest answer, and
# how many took over 100 ms: a datagram taken by a generation that does not
# know the connection is lost, and QUIC sends it again after a while).
import asyncio, json, ssl, sys, threading, time
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated

class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiting = {}
        self.bodies = {}

    def quic_event_received(self, event):
        if isinstance(event, ConnectionTerminated):
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection terminated"))
        for received in self.h3.handle_event(event):
            if isinstance(received, DataReceived):
                self.bodies[received.stream_id] = self.bodies.get(received.stream_id, b"") + received.data
                if received.stream_ended and received.stream_id in self.waiting:
                    self.waiting.pop(received.stream_id).set_result(self.bodies.pop(received.stream_id))

    async def get(self):
        stream = self._quic.get_next_available_stream_id()
        self.h3.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                                      (b":path", b"/")], end_stream=True)
        future = asyncio.get_running_loop().create_future()
        self.waiting[stream] = future
        self.transmit()
        return await asyncio.wait_for(future, 3.0)

async def main(port):
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE, idle_timeout=60)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    stats = {"requests": 0, "failed": 0, "connections": 0, "generations": {}, "max_ms": 0, "over_100ms": 0}
    while not done.is_set():
        stats["connections"] += 1
        try:
            async with connect("127.0.0.1", port, configuration=configuration, create_protocol=Client) as client:
                if stats["connections"] == 1:
                    print("connected", flush=True)
                while not done.is_set():
                    stats["requests"] += 1
                    started = time.monotonic()
                    try:
                        body = await client.get()
                    except Exception:
                        stats["failed"] += 1
                        print("request failed", flush=True)
                        break
                    took = (time.monotonic() - started) * 1000
                    stats["max_ms"] = max(stats["max_ms"], round(took))
                    stats["over_100ms"] += took > 100
                    print("request ok", flush=True)
                    generation = body.decode().split()[1]
                    stats["generations"][generation] = stats["generations"].get(generation, 0) + 1
                    await asyncio.sleep(0.05)
                client.close()
        except Exception:
            stats["failed"] += 1
            await asyncio.sleep(0.05)
    print(json.dumps(stats), flush=True)

asyncio.run(main(int(sys.argv[1])))
"""#

    static let certificateScript = #"""
# A self-signed certificate for localhost: cert.pem and key.pem in DIRECTORY.
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256()))
open(sys.argv[1] + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[1] + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
"""#
}
