// The lab's process helper against real, harmless programs (no root): exit statuses, both output
// streams (large enough to deadlock a naive reader), failures explained, detached services.
import Foundation
import SluiceLab
import SluiceProcess
import Testing

#if canImport(Glibc)
    import Glibc
#endif

struct CommandRunnerTests {
    let runner = SystemCommandRunner()

    @Test func capturesStatusAndBothStreams() throws {
        let result = try runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(result == CommandResult(status: 3, stdout: "out\n", stderr: "err\n"))
    }

    @Test func argumentsAreNeverReparsedByAShell() throws {
        let tricky = "a b; echo injected $(id) 'q'"
        #expect(try runner.check(["printf", "%s", tricky]) == tricky)
    }

    @Test func largeOutputOnBothStreamsDoesNotDeadlock() throws {
        // 1 MiB on stderr before anything on stdout: more than a pipe buffer holds.
        let result = try runner.run(["sh", "-c", "head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero"])
        #expect(result.status == 0)
        #expect(result.stdout.utf8.count == 1_048_576)
        #expect(result.stderr.utf8.count == 1_048_576)
    }

    @Test func checkAndExecuteExplainFailures() throws {
        #expect(throws: LabError.self) { try runner.check(["false"]) }
        do {
            try runner.execute([LabStep(["sh", "-c", "echo why >&2; exit 7"])])
            Issue.record("a failing step must stop the plan")
        } catch let error as LabError {
            #expect(error.description.contains("exited with 7: why"))
        }
        // A step that may fail does not stop the plan.
        try runner.execute([LabStep(["false"], mayFail: true), LabStep(["true"])])
    }

    @Test func missingProgramsAreNamed() throws {
        #expect(throws: LabError.self) { try runner.run(["sluice-no-such-program"]) }
        #expect(try Subprocess.locate("/bin/sh") == "/bin/sh")
        #expect(try Subprocess.locate("sh").hasSuffix("/sh"))
    }

    @Test func detachedServiceLeadsItsOwnProcessGroupAndLogs() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lab-spawn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("svc.log").path
        let pidFile = directory.appendingPathComponent("svc.pid").path
        let pid = try runner.spawnDetached(["sh", "-c", "echo started; exec sleep 30"], log: log, pidFile: pidFile)
        defer { kill(-pid, SIGKILL) }
        #expect(pid > 1)
        #expect(getpgid(pid) == pid, "the service must lead its own process group")
        #expect(getsid(pid) == pid, "the service must lead its own session")
        let deadline = Date().addingTimeInterval(5)
        var text = ""
        while Date() < deadline {
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("started") { break }
            usleep(20_000)
        }
        #expect(text == "started\n")
        // "started" is written before the shell execs sleep: wait for the exec too.
        var comm = ""
        while Date() < deadline {
            comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            if comm == "sleep\n" { break }
            usleep(20_000)
        }
        #expect(comm == "sleep\n", "the recorded pid is the service itself, not a wrapper")
        // `down` relies on SIGTERM: it must be neither blocked nor ignored in the service.
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        for field in ["SigBlk:", "SigIgn:"] {
            let line = status.split(separator: "\n").first { $0.hasPrefix(field) } ?? ""
            let mask = UInt64(line.dropFirst(field.count).trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
            #expect(mask & (1 << (UInt64(SIGTERM) - 1)) == 0, "SIGTERM in \(field) of the service: \(line)")
        }
    }
}
