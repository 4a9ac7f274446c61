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

/// Runs real processes with `posix_spawn` and `waitpid`, not Foundation's `Process`: that one lost
/// the exit of a child that ended within microseconds (a `setsid --fork` parent) and hung in
/// `waitUntilExit`, and its children inherited a signal mask with SIGTERM blocked, so a service
/// could not be stopped gracefully. Here every child starts with an empty mask and default handlers.
public struct SystemCommandRunner: CommandRunning {
    /// A runner; programs are looked up in PATH and then in the sbin directories root's PATH may lack.
    public init() {}

    public func run(_ argv: [String]) throws -> CommandResult {
        precondition(!argv.isEmpty, "a command needs a program")
        let program = try Self.locate(argv[0])
        let outPipe = try Self.makePipe()
        let errPipe: [Int32]
        do {
            errPipe = try Self.makePipe()
        } catch {
            outPipe.forEach { close($0) }
            throw error
        }
        let pid: pid_t
        do {
            pid = try Self.spawn(
                program, argv, stdinPath: "/dev/null", stdout: .descriptor(outPipe[1]),
                stderr: .descriptor(errPipe[1]), newSession: false)
        } catch {
            for fd in outPipe + errPipe { close(fd) }
            throw error
        }
        close(outPipe[1])
        close(errPipe[1])
        // Both pipes drained together: reading one to its end first deadlocks when the child fills
        // the other one meanwhile.
        var output = [Data(), Data()]
        var open = [outPipe[0], errPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open.contains(where: { $0 >= 0 }) {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in 0..<2 where open[index] >= 0 && fds[index].revents != 0 {
                let count = read(open[index], &buffer, buffer.count)
                if count > 0 {
                    output[index].append(contentsOf: buffer[0..<count])
                } else if count == 0 || errno != EINTR {
                    close(open[index])
                    open[index] = -1
                }
            }
        }
        let status = try Self.wait(pid)
        return CommandResult(
            status: status, stdout: String(decoding: output[0], as: UTF8.self),
            stderr: String(decoding: output[1], as: UTF8.self))
    }

    public func spawnDetached(_ argv: [String], log: String, pidFile: String) throws -> Int32 {
        // A new session (POSIX_SPAWN_SETSID): the service leads its own process group, so `down`
        // stops the group (nsd's workers too), and no terminal signal reaches it. Not waited for:
        // when this command exits the service is reparented and keeps running.
        let pid = try Self.spawn(
            try Self.locate(argv[0]), argv, stdinPath: "/dev/null", stdout: .appendFile(log), stderr: .sameAsStdout,
            newSession: true)
        try "\(pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        return pid
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

    // Close-on-exec so that no other child inherits them (pipe2 is behind _GNU_SOURCE; the lab runs
    // one command at a time, so the window between pipe and fcntl races with nothing).
    private static func makePipe() throws -> [Int32] {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw LabError("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fds
    }

    private enum Output {
        case descriptor(Int32)
        case appendFile(String)
        case sameAsStdout
    }

    // glibc's POSIX_SPAWN_SETSID (spawn.h, behind _GNU_SOURCE, so Swift does not see the macro).
    private static let spawnSetSID: Int32 = 0x80

    private static func spawn(
        _ program: String, _ argv: [String], stdinPath: String, stdout: Output, stderr: Output, newSession: Bool
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        switch stdout {
        case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, 1)
        case .appendFile(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        case .sameAsStdout: break
        }
        switch stderr {
        case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, 2)
        case .appendFile(let path):
            posix_spawn_file_actions_addopen(&actions, 2, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        case .sameAsStdout: posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | (newSession ? spawnSetSID : 0)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, &cArguments, environ)
        guard result == 0 else {
            throw LabError("cannot start `\(argv.joined(separator: " "))`: \(String(cString: strerror(result)))")
        }
        return pid
    }

    // The exit status, or 128 + the signal that ended it (the shell's convention).
    private static func wait(_ pid: pid_t) throws -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw LabError("waitpid \(pid): \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
