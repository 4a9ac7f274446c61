// The lab's only way to run programs: an argv (never a shell string built from values), its
// output captured, its exit status checked. `SystemCommandRunner` runs real processes; tests
// substitute a recording runner to check what would run without root.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a finished command left behind.
public struct CommandResult: Sendable, Equatable {
    /// Exit status (or 128 + signal when killed by one).
    public var status: Int32
    /// Everything it wrote on stdout.
    public var stdout: String
    /// Everything it wrote on stderr.
    public var stderr: String

    /// Makes a result.
    public init(status: Int32, stdout: String = "", stderr: String = "") {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A lab operation that did not work, with what an operator needs to fix it.
public struct LabError: Error, CustomStringConvertible, Sendable {
    /// The explanation, complete (command, status and stderr when a command failed).
    public var description: String

    /// An error with the given explanation.
    public init(_ description: String) { self.description = description }

    /// A command that exited non-zero.
    public static func commandFailed(_ argv: [String], _ result: CommandResult) -> LabError {
        let detail = (result.stderr.isEmpty ? result.stdout : result.stderr)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return LabError(
            "`\(argv.joined(separator: " "))` exited with \(result.status)\(detail.isEmpty ? "" : ": \(detail)")")
    }
}

/// Runs programs for the lab. Implementations must not use a shell to interpret `argv`.
public protocol CommandRunning: Sendable {
    /// Runs `argv` to completion and returns its status and output; throws only when it cannot start.
    func run(_ argv: [String]) throws -> CommandResult

    /// Starts `argv` in a new session (its own process group, no controlling terminal), stdin from
    /// /dev/null, stdout and stderr appended to `log`; returns its pid once `pidFile` holds it.
    func spawnDetached(_ argv: [String], log: String, pidFile: String) throws -> Int32
}

extension CommandRunning {
    /// Runs `argv` and throws `LabError.commandFailed` unless it exits 0; returns its stdout.
    @discardableResult
    public func check(_ argv: [String]) throws -> String {
        let result = try run(argv)
        guard result.status == 0 else { throw LabError.commandFailed(argv, result) }
        return result.stdout
    }

    /// Runs the steps in order; a failing step stops the plan unless it is marked `mayFail`.
    public func execute(_ plan: [LabStep]) throws {
        for step in plan {
            let result = try run(step.argv)
            if result.status != 0 && !step.mayFail { throw LabError.commandFailed(step.argv, result) }
        }
    }
}

/// Runs real processes through Foundation's `Process`.
public struct SystemCommandRunner: CommandRunning {
    /// A runner; programs are looked up in PATH and then in the sbin directories root's PATH may lack.
    public init() {}

    public func run(_ argv: [String]) throws -> CommandResult {
        precondition(!argv.isEmpty, "a command needs a program")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.locate(argv[0]))
        process.arguments = Array(argv.dropFirst())
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // stderr is drained on another thread: reading the two pipes one after the other deadlocks
        // when the child fills the second one while we wait on the first.
        let errorBox = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let status =
            process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(
            status: status, stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: errorBox.data, as: UTF8.self))
    }

    public func spawnDetached(_ argv: [String], log: String, pidFile: String) throws -> Int32 {
        try? FileManager.default.removeItem(atPath: pidFile)
        // setsid --fork: a new session whatever we are, so the service is its own process group
        // leader (down stops the group: nsd's workers too) and outlives this command. The small
        // sh writes its own pid, then execs the service in place, so the pid recorded is the
        // service's; the arguments travel as "$@", never re-parsed by the shell.
        let script = #"pidfile=$1; log=$2; shift 2; echo $$ > "$pidfile"; exec "$@" >>"$log" 2>&1 </dev/null"#
        let result = try run(["setsid", "--fork", "/bin/sh", "-c", script, "sh", pidFile, log] + argv)
        guard result.status == 0 else { throw LabError.commandFailed(argv, result) }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return pid
            }
            usleep(20_000)
        }
        throw LabError("`\(argv.joined(separator: " "))` did not start: no pid in \(pidFile) after 5 s")
    }

    /// The absolute path of `program`: as given when it contains a slash, else the first PATH hit.
    public static func locate(_ program: String) throws -> String {
        if program.contains("/") { return program }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(program)") {
            return "\(directory)/\(program)"
        }
        throw LabError("`\(program)` is not installed (run scripts/setup.sh as root)")
    }
}

// The drain thread's result; written once before `group.leave()`, read after `group.wait()`.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}
