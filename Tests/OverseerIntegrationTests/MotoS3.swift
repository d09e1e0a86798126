import Glibc
import Foundation
import OverseerTestSupport
import Testing

/// moto's S3 emulator (PyPI moto, in server mode) on 127.0.0.1, with one bucket.
final class MotoS3 {
    let process: RunningProcess
    let port: UInt16
    let bucket: String
    static let environment = ["http_proxy": "", "HTTP_PROXY": "", "all_proxy": "", "NO_PROXY": "127.0.0.1"]
    /// What overseerd needs to reach it (with `--s3-endpoint endpoint`).
    static let credentials = ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"]

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts it, makes `bucket` and uploads each file to its key.
    init(bucket: String, uploads: [(key: String, path: String)]) throws {
        let probe = try RunningProcess(["/usr/bin/env", "python3", "-c", "import moto.server, boto3"]).waitForExit()
        try #require(probe == .exited(0), "python3 cannot import moto.server and boto3 (pip install 'moto[server]')")
        self.bucket = bucket
        let script = """
            import sys, boto3
            from moto.server import ThreadedMotoServer
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            port = server.get_host_and_port()[1]
            s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
            s3.create_bucket(Bucket=sys.argv[1])
            for key, path in zip(sys.argv[2::2], sys.argv[3::2]):
                s3.upload_file(path, sys.argv[1], key)
            print("MOTO_PORT=%d" % port, flush=True)
            __import__("threading").Event().wait()
            """
        process = try RunningProcess(["/usr/bin/env", "python3", "-u", "-c", script, bucket] + uploads.flatMap { [$0.key, $0.path] },
                                     environment: Self.environment)
        let line = try process.waitForLine(containing: "MOTO_PORT=", in: .stdout, timeout: 60)
        port = try #require(line.components(separatedBy: "MOTO_PORT=").last.flatMap { UInt16($0.trimmingCharacters(in: .whitespaces)) })
    }

    deinit {
        process.signal(SIGKILL)
        _ = try? process.waitForExit()
    }

    /// Puts `body` at `key` (replacing what is there).
    func put(_ key: String, _ body: String) throws {
        let upload = try RunningProcess(["/usr/bin/env", "python3", "-c", """
            import sys, boto3
            s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
            s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=sys.argv[4].encode())
            """, endpoint, bucket, key, body], environment: Self.environment).waitForExit()
        #expect(upload == .exited(0), "put \(key) on moto")
    }
}
