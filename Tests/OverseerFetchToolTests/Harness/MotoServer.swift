import Foundation
import OverseerTestSupport

/// moto's S3 emulator in server mode, with signature checking on, holding a bucket `releases`
/// with the objects of MotoServerScript; started once for the whole test run.
final class MotoServer: Sendable {
    let port: Int
    /// Credentials of the IAM user the script made: moto checks every S3 request's SigV4 signature against them.
    let accessKeyID: String
    let secretAccessKey: String
    /// Per object key: its bytes' SHA-256 and its ETag, as boto3 saw them.
    let objects: [String: (sha256: String, etag: String, size: Int)]
    private let process: RunningProcess

    static let shared = Result { try MotoServer() }

    /// moto and boto3 import (after one `pip install 'moto[server]'` if they did not).
    static let available: Bool = {
        func importable() -> Bool {
            guard let check = try? RunningProcess(["/usr/bin/env", "python3", "-c", "import moto.server, boto3"],
                                                  removing: FetchTool.hiddenVariables) else { return false }
            return (try? check.waitForExit(timeout: 60)) == .exited(0)
        }
        if importable() { return true }
        if let install = try? RunningProcess(["/usr/bin/env", "python3", "-m", "pip", "install", "-q", "moto[server]"],
                                             removing: FetchTool.hiddenVariables) {
            _ = try? install.waitForExit(timeout: 300)
        }
        return importable()
    }()

    var endpoint: String { "http://127.0.0.1:\(port)" }

    private init() throws {
        let directory = try TemporaryDirectory()
        let script = directory.path + "/moto_server.py"
        try motoServerScript.write(toFile: script, atomically: true, encoding: .utf8)
        process = try RunningProcess(["/usr/bin/env", "python3", script], removing: FetchTool.hiddenVariables,
                                     stdinPipe: true)
        guard let line = try? process.nextLine(timeout: 40),
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let port = json["port"] as? Int, let key = json["key"] as? String, let secret = json["secret"] as? String,
              let objects = json["objects"] as? [String: [String: Any]] else {
            process.closeStdin()
            _ = try? process.waitForExit(timeout: 5)
            throw HarnessError("moto did not start: \(process.stderrText.suffix(2000))")
        }
        self.port = port
        accessKeyID = key
        secretAccessKey = secret
        self.objects = objects.mapValues { ($0["sha256"] as! String, $0["etag"] as! String, $0["size"] as! Int) }
    }
}

/// Starts moto with authentication enforced after the 3 IAM calls that create a user, its key
/// and an allow-all policy; then, signed with that key, creates the bucket and objects.
let motoServerScript = #"""
import hashlib, json, os, sys
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
from moto.server import ThreadedMotoServer
import boto3

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
port = server.get_host_and_port()[1]
endpoint = "http://127.0.0.1:%d" % port
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="fetcher")
key = iam.create_access_key(UserName="fetcher")["AccessKey"]
iam.put_user_policy(UserName="fetcher", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket="releases")
binary = os.urandom(200_000)
objects = {
    "app/tool-linux": binary,
    "app/tool-linux.sha256": (hashlib.sha256(binary).hexdigest() + "  tool-linux\n").encode(),
    "app/with space": os.urandom(1000),
}
described = {}
for name, body in objects.items():
    etag = s3.put_object(Bucket="releases", Key=name, Body=body)["ETag"]
    described[name] = {"sha256": hashlib.sha256(body).hexdigest(), "etag": etag, "size": len(body)}
print(json.dumps({"port": port, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"],
                  "objects": described}), flush=True)
sys.stdin.read()
os._exit(0)
"""#
