// How the lab runs programs: an argv (never a shell string built from values), its output
// captured, its exit status checked. `SystemCommandRunner` runs real processes through the shared
// `Subprocess` runner; tests substitute a recording runner to check what would run without root.
import Foundation
import SluiceProcess

/// What a finished command left behind (the shared runner's result).
public typealias CommandResult = ProcessResult

/// A lab operation that did not work, with what an operator needs to fix it.
public struct LabError: Error, CustomStringConvertible, Sendable {
    /// The explanation, complete (command, status and stderr when a command failed).
    public var description: String

    /// An error with the given explanation.
    public init(_ description: String) { self.description = description }

    /// A command that exited non-zero.
    public static func commandFailed(_ argv: [String], _ result: CommandResult) -> LabError {
        LabError(ProcessError.failed(argv, result).description)
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

/// Runs real processes with the project's one runner, `Subprocess` (SluiceProcess).
public struct SystemCommandRunner: CommandRunning {
    /// A runner; programs are looked up with `Subprocess.locate`.
    public init() {}

    public func run(_ argv: [String]) throws -> CommandResult {
        do {
            return try Subprocess.run(argv)
        } catch let error as ProcessError {
            throw LabError(error.description)
        }
    }

    public func spawnDetached(_ argv: [String], log: String, pidFile: String) throws -> Int32 {
        // A new session: the service leads its own process group, so `down` stops the group (nsd's
        // workers too), and no terminal signal reaches it. Not waited for: when this command exits
        // the service is reparented and keeps running.
        let process: RunningProcess
        do {
            process = try Subprocess.start(argv, stdout: .appendFile(log), stderr: .sameAsStdout, newSession: true)
        } catch let error as ProcessError {
            throw LabError(error.description)
        }
        try "\(process.pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        return process.pid
    }
}
