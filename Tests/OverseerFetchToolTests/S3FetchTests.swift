import Foundation
import OverseerProtocol
import Testing

/// `s3://` against moto in server mode, which checks each request's SigV4 signature.
@Suite(.enabled(if: MotoServer.available, "moto[server] and boto3 are not importable by python3 and pip could not install them"))
struct S3FetchTests {
    let moto: MotoServer

    init() throws { moto = try MotoServer.shared.get() }

    private var credentials: [String: String] {
        ["AWS_ACCESS_KEY_ID": moto.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey, "AWS_REGION": "us-east-1"]
    }

    @Test func downloadsASignedObjectThenGets304ForItsETag() throws {
        let object = try #require(moto.objects["app/tool-linux"])
        let first = try FetchTool.run(["--s3-endpoint", moto.endpoint, "--sidecar", ".sha256", "s3://releases/app/tool-linux"],
                                      environment: credentials)
        #expect(first.exitStatus == 0, "\(first.summary)")
        let report = try #require(first.report)
        #expect(report.result == .downloaded)
        #expect(report.sha256 == object.sha256)
        #expect(report.bytes == Int64(object.size))
        #expect(first.written.count == object.size)
        #expect(report.etag == object.etag)
        #expect(report.sidecar(".sha256") == object.sha256 + "  tool-linux\n")

        let second = try FetchTool.run(["--s3-endpoint", moto.endpoint, "--etag", object.etag, "s3://releases/app/tool-linux"],
                                       environment: credentials)
        #expect(second.exitStatus == 0, "\(second.summary)")
        #expect(second.report?.result == .notModified)
        #expect(second.report?.etag == object.etag)
        #expect(second.written.isEmpty)
    }

    @Test func encodesKeysInThePath() throws {
        let object = try #require(moto.objects["app/with space"])
        let run = try FetchTool.run(["--s3-endpoint", moto.endpoint + "/", "--s3-region", "us-east-1",
                                     "s3://releases/app/with space"], environment: credentials)
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.report?.sha256 == object.sha256)
    }

    @Test func aWrongSecretIsRefused() throws {
        var wrong = credentials
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let run = try FetchTool.run(["--s3-endpoint", moto.endpoint, "s3://releases/app/tool-linux"], environment: wrong)
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "http")
        #expect(run.report?.status == 403)
        #expect(run.report?.message?.contains("SignatureDoesNotMatch") == true)
        #expect(run.written.isEmpty)
    }

    @Test func aMissingObjectIsA404() throws {
        let run = try FetchTool.run(["--s3-endpoint", moto.endpoint, "s3://releases/app/nothing"], environment: credentials)
        #expect(run.report?.kind == "http", "\(run.summary)")
        #expect(run.report?.status == 404)
        #expect(run.report?.message?.contains("s3://releases/app/nothing") == true)
    }
}
