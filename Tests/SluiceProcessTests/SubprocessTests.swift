// The shared runner against real, harmless programs (no root): statuses, both streams at once,
// stdin bytes and pipes, timeouts that kill, background handles, environment and working directory.
// The lab's adapter over it is tested in SluiceLabTests/CommandRunnerTests.
import Foundation
import SluiceProcess
import Testing

#if canImport(Glibc)
    import Glibc
#endif

struct SubprocessTests {
    @Test func capturesStatusAndBothStreamsWithoutDeadlock() throws {
        // 1 MiB on stderr before anything on stdout: more than a pipe buffer holds.
        let result = try Subprocess.run(["sh", "-c", "head -c 1048576 /dev/zero >&2; echo out; exit 3"])
        #expect(result.status == 3)
        #expect(result.stdout == "out\n")
        #expect(result.stderr.utf8.count == 1_048_576)
        #expect(!result.timedOut)
    }

    @Test func checkThrowsWithTheCommandStatusAndStderr() {
        do {
            try Subprocess.check(["sh", "-c", "echo why >&2; exit 7"])
            Issue.record("a failing command must throw")
        } catch {
            #expect("\(error)" == "`sh -c echo why >&2; exit 7` exited with 7: why")
        }
        #expect(throws: ProcessError.self) { try Subprocess.run(["sluice-no-such-program"]) }
    }

    @Test func inputBytesLargerThanAPipeReachTheChild() throws {
        let input = Data(repeating: 0x61, count: 1_000_000)
        #expect(try Subprocess.check(["wc", "-c"], input: input).trimmingCharacters(in: .whitespaces) == "1000000\n")
        // A child that does not read its input is no error (and does not kill us with SIGPIPE).
        #expect(try Subprocess.run(["true"], input: input).status == 0)
    }

    @Test func timeoutKillsAndSaysSo() throws {
        let start = Date()
        let result = try Subprocess.run(["sleep", "10"], timeout: 0.2)
        #expect(result.timedOut)
        #expect(result.status == 128 + SIGKILL)
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(throws: ProcessError.self) { try Subprocess.check(["sleep", "10"], timeout: 0.2) }
    }

    @Test func backgroundHandleStreamsTakesInputAndCanBeKilled() throws {
        let echo = try Subprocess.start(["sh", "-c", "read a; echo got $a; read b; echo then $b"], stdin: .pipe)
        echo.write("one\n")
        #expect(echo.waitForOutput(timeout: 10) { $0.contains("\n") } == "got one\n")
        #expect(echo.isRunning)
        echo.write("two\n")
        #expect(echo.wait() == ProcessResult(status: 0, stdout: "got one\nthen two\n"))

        let sleeper = try Subprocess.start(["sleep", "30"], stdout: .discard, stderr: .discard)
        #expect(sleeper.isRunning && sleeper.status == nil)
        sleeper.kill()
        #expect(sleeper.wait().status == 128 + SIGTERM)
        #expect(!sleeper.isRunning)
        sleeper.kill()  // reaped: nothing is signalled
    }

    @Test func aGrandchildHoldingThePipeDoesNotHangWait() throws {
        // The background sleep inherits stdout; `wait` returns once the shell exits and a grace passes.
        let process = try Subprocess.start(["sh", "-c", "sleep 30 & echo $!"], newSession: true)
        let result = process.wait(timeout: 10)
        defer { kill(-process.pid, SIGKILL) }  // the whole session: the orphaned sleep too
        #expect(result.status == 0 && !result.timedOut)
        #expect(Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) != nil)
    }

    @Test func environmentAndDirectoryAreTheChildsOwn() throws {
        #expect(try Subprocess.check(["/usr/bin/env"], environment: ["ONLY": "this"]) == "ONLY=this\n")
        #expect(try Subprocess.check(["pwd"], directory: "/usr") == "/usr\n")
        #expect(try Subprocess.locate("/bin/sh") == "/bin/sh")
        #expect(try Subprocess.locate("sh").hasSuffix("/sh"))
    }

    @Test func childrenStartWithDefaultSignalHandling() throws {
        // SIGTERM blocked here must not be blocked in the child (services are stopped with it).
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let status = try Subprocess.check(["sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"])
        for line in status.split(separator: "\n") {
            let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? 0
            #expect(mask & (1 << (UInt64(SIGTERM) - 1)) == 0, "SIGTERM in \(line)")
        }
    }
}
