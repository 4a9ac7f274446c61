// End to end against the built `sluice` binary: `sluice token create` prints the token alone,
// `sluice run --dataplane none` serves HTTPS with its self-signed certificate, and the curl
// command of 000_03ae8a53bab02b1f.txt (Step 1) works verbatim, host and token aside. SIGTERM
// stops the process cleanly. Needs the binary built (`swift build`) and curl.
import Foundation
import SluiceProcess
import Testing

@Suite(.serialized) struct EndToEndTests {
    static let buildDirectory: URL = {
        let own = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0])
        return own.deletingLastPathComponent()
    }()
    static let binary = buildDirectory.appendingPathComponent("sluice")
    static let curlAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    static let binaryBuilt = FileManager.default.isExecutableFile(atPath: binary.path)

    @Test(.enabled(if: binaryBuilt, "the sluice binary is not built next to the tests: run `swift build` first"),
          .enabled(if: curlAvailable, "needs /usr/bin/curl to run the spec's curl command verbatim"))
    func specCurlCommandAgainstSluiceRun() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let dataDir = directory.appendingPathComponent("data").path

        let token = try run(Self.binary.path, ["token", "create", "--data-dir", dataDir, "--role", "admin"])
        #expect(token.status == 0)
        let tokenText = token.output.trimmingCharacters(in: .newlines)
        #expect(tokenText.hasPrefix("sluice_") && !tokenText.contains("\n"), "stdout must be the token alone")

        let port = Int.random(in: 20_000...60_000)
        let server = try Subprocess.start(
            [Self.binary.path, "run", "--data-dir", dataDir, "--api-listen", "127.0.0.1:\(port)", "--dataplane", "none"],
            stdout: .discard, stderr: .discard)
        defer {
            server.kill(SIGKILL)
            server.wait()
        }
        var healthy = false
        for _ in 0..<100 where !healthy {
            healthy = (try? run("/usr/bin/curl", ["-sfk", "https://127.0.0.1:\(port)/health"]))?.status == 0
            if !healthy { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(healthy, "sluice run did not answer /health")

        try policyEnvelope().write(
            to: directory.appendingPathComponent("policy.json"), atomically: true, encoding: .utf8)
        // Step 1 of 000_03ae8a53bab02b1f.txt, verbatim but for host and token variable.
        let command = """
            curl -sk \\
            -H "Authorization: Bearer $TOKEN" \\
            -H "Content-Type: application/json" \\
            -X PUT \\
            https://127.0.0.1:\(port)/api/v1/policies/by-name/office-egress \\
            --data @policy.json
            """
        let put = try run("/bin/bash", ["-c", command], environment: ["TOKEN": tokenText], directory: directory)
        #expect(put.status == 0)
        let record = try #require(
            try JSONSerialization.jsonObject(with: Data(put.output.utf8)) as? [String: Any], "reply: \(put.output)")
        #expect(record["name"] as? String == "office-egress")
        #expect(record["mode"] as? String == "audit")
        #expect(record["active"] as? Bool == true)

        let ready = try run(
            "/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(port)/ready"])
        #expect(ready.output == "200")

        // curl sends `Expect: 100-continue` before a body over 1 MiB (a policy of thousands of rules)
        // and waits for the go-ahead (1 s by default, 10 s here): the server must give it at once.
        let expecting = try run(
            "/usr/bin/curl",
            ["-sk", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--expect100-timeout", "10",
             "-H", "Authorization: Bearer \(tokenText)", "-H", "Content-Type: application/json",
             "-H", "Expect: 100-continue", "-X", "PUT",
             "https://127.0.0.1:\(port)/api/v1/policies/by-name/office-egress", "--data", "@policy.json"],
            directory: directory)
        let fields = expecting.output.split(separator: " ")
        #expect(fields.first == "200", "reply: \(expecting.output)")
        #expect((Double(fields.last ?? "") ?? 99) < 5, "the write waited for 100 Continue: \(expecting.output)")

        server.kill(SIGTERM)
        #expect(server.wait().status == 0)
    }

    @Test(.enabled(if: binaryBuilt, "the sluice binary is not built next to the tests: run `swift build` first"))
    func plaintextOnlyOnLoopback() throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dataDir) }
        let refused = try run(
            Self.binary.path,
            [
                "run", "--data-dir", dataDir.path, "--api-listen", "0.0.0.0:18080", "--api-plaintext", "--dataplane",
                "none",
            ])
        #expect(refused.status != 0)
    }

    /// Runs a program to completion and returns its exit status and stdout.
    func run(
        _ path: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil
    ) throws -> (status: Int32, output: String) {
        let result = try Subprocess.start(
            [path] + arguments, stderr: .discard,
            environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 },
            directory: directory?.path
        ).wait()
        return (result.status, result.stdout)
    }
}
