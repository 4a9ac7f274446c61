// The project's one way to run another program: an argv (never a shell string), stdin from
// /dev/null, bytes or a pipe, stdout and stderr captured, discarded or appended to a file, an exit
// status, an optional timeout that kills. Used by the dataplane (`nft`), the lab, the `sluice`
// command, the tests and the benchmark harnesses alike. Foundation and Glibc only, so that every
// layer may depend on it.
//
// posix_spawn and waitpid directly, not Foundation's `Process`: that one lost the exit of a child
// that ended within microseconds (a `setsid --fork` parent) and hung in `waitUntilExit`, and its
// children inherited the caller's blocked signals, so a service could not be stopped with SIGTERM.
// Here every child starts with an empty signal mask and default handlers.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a finished program left behind.
public struct ProcessResult: Sendable, Equatable {
    /// Exit status, or 128 + the signal that ended it (the shell's convention).
    public var status: Int32
    /// Everything it wrote on stdout (when captured).
    public var stdout: String
    /// Everything it wrote on stderr (when captured).
    public var stderr: String
    /// Whether it was killed because its timeout passed.
    public var timedOut: Bool

    /// Makes a result.
    public init(status: Int32, stdout: String = "", stderr: String = "", timedOut: Bool = false) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.timedOut = timedOut
    }
}

/// A program that could not be started, or (from `Subprocess.check`) did not exit 0.
public struct ProcessError: Error, CustomStringConvertible, Sendable {
    /// The explanation, complete (command, status and stderr when a command failed).
    public var description: String

    /// An error with the given explanation.
    public init(_ description: String) { self.description = description }

    /// A command that exited non-zero or timed out: its argv, status and stderr (stdout when stderr is empty).
    public static func failed(_ argv: [String], _ result: ProcessResult) -> ProcessError {
        let detail = (result.stderr.isEmpty ? result.stdout : result.stderr)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let how = result.timedOut ? "timed out and was killed" : "exited with \(result.status)"
        return ProcessError("`\(argv.joined(separator: " "))` \(how)\(detail.isEmpty ? "" : ": \(detail)")")
    }
}

/// Runs programs. Every entry point takes an argv whose first element is the program, looked up
/// with `locate`; nothing is interpreted by a shell.
public enum Subprocess {
    /// Where a child's stdin comes from.
    public enum Input: Sendable {
        /// /dev/null.
        case null
        /// These bytes, then end of file.
        case bytes(Data)
        /// A pipe the caller writes with `RunningProcess.write` and ends with `closeInput`.
        case pipe
    }

    /// Where a child's stdout or stderr goes.
    public enum Output: Sendable {
        /// Into memory: `RunningProcess.stdout`/`stderr` and the `ProcessResult`.
        case capture
        /// /dev/null. The choice for a child that daemonises: it could keep a pipe open forever.
        case discard
        /// Appended to this file (created when missing).
        case appendFile(String)
        /// Wherever stdout goes (stderr only).
        case sameAsStdout
    }

    /// Runs `argv` to completion, stdout and stderr captured (read concurrently, so a child filling
    /// one pipe while the other is read cannot deadlock). With a `timeout` (seconds) a child still
    /// running then is killed with SIGKILL and the result says `timedOut`. Throws only when it cannot start.
    public static func run(
        _ argv: [String], input: Data? = nil, environment: [String: String]? = nil, directory: String? = nil,
        timeout: Double? = nil
    ) throws -> ProcessResult {
        let process = try start(
            argv, stdin: input.map { .bytes($0) } ?? .null, environment: environment, directory: directory)
        return process.wait(timeout: timeout)
    }

    /// Runs `argv` like `run` and returns its stdout; throws `ProcessError.failed` (with its stderr)
    /// unless it exits 0 in time.
    @discardableResult
    public static func check(
        _ argv: [String], input: Data? = nil, environment: [String: String]? = nil, directory: String? = nil,
        timeout: Double? = nil
    ) throws -> String {
        let result = try run(argv, input: input, environment: environment, directory: directory, timeout: timeout)
        guard result.status == 0, !result.timedOut else { throw ProcessError.failed(argv, result) }
        return result.stdout
    }

    /// Starts `argv` in the background and returns at once. `environment` replaces the caller's
    /// when given; `directory` is its working directory (the caller's when nil). With `newSession` the child leads a new session and process group (no
    /// controlling terminal; `RunningProcess.kill` signals the whole group), as a service started
    /// by `sluice lab up` must. The handle may be dropped without waiting (the child keeps running).
    public static func start(
        _ argv: [String], stdin: Input = .null, stdout: Output = .capture, stderr: Output = .capture,
        environment: [String: String]? = nil, directory: String? = nil, newSession: Bool = false
    ) throws -> RunningProcess {
        precondition(!argv.isEmpty, "a command needs a program")
        let program = try locate(argv[0])
        var pipes: [Int32] = []  // every descriptor this function opened, closed on failure
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw ProcessError("pipe: \(String(cString: strerror(errno)))") }
            // Close-on-exec, so that no other child inherits them (the spawned one gets dup2 copies).
            // pipe2 is behind _GNU_SOURCE; a child started by another thread in between could inherit
            // an end, which at worst delays `wait` by its 2 s grace for output.
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            pipes += fds
            return (fds[0], fds[1])
        }
        do {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            var inputWrite: Int32 = -1
            var inputBytes: Data?
            switch stdin {
            case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            case .bytes, .pipe:
                let input = try makePipe()
                posix_spawn_file_actions_adddup2(&actions, input.read, 0)
                inputWrite = input.write
                if case .bytes(let data) = stdin { inputBytes = data }
            }
            var readers: [Int32] = [-1, -1]
            for (index, output) in [stdout, stderr].enumerated() {
                let target = Int32(index + 1)
                switch output {
                case .capture:
                    let pipe = try makePipe()
                    posix_spawn_file_actions_adddup2(&actions, pipe.write, target)
                    readers[index] = pipe.read
                case .discard: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
                case .appendFile(let path):
                    posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
                case .sameAsStdout:
                    precondition(index == 1, "only stderr can go where stdout goes")
                    posix_spawn_file_actions_adddup2(&actions, 1, 2)
                }
            }

            if let directory {
                guard let addChdir = lookUpAddChdir() else {
                    throw ProcessError("cannot start a program in \(directory): glibc older than 2.29")
                }
                addChdir(&actions, directory)
            }

            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var empty = sigset_t()
            sigemptyset(&empty)
            posix_spawnattr_setsigmask(&attributes, &empty)
            // Ignored signals stay ignored across exec; every disposition goes back to the default.
            var all = sigset_t()
            sigfillset(&all)
            posix_spawnattr_setsigdefault(&attributes, &all)
            let flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | (newSession ? spawnSetSID : 0)
            posix_spawnattr_setflags(&attributes, Int16(flags))

            var cArguments = argv.map { strdup($0) } + [nil]
            defer { for pointer in cArguments { free(pointer) } }
            let cEnvironment = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
            defer { for pointer in cEnvironment ?? [] { free(pointer) } }
            var pid: pid_t = 0
            let spawned: Int32
            if var childEnvironment = cEnvironment {
                spawned = posix_spawn(&pid, program, &actions, &attributes, &cArguments, &childEnvironment)
            } else {
                spawned = posix_spawn(&pid, program, &actions, &attributes, &cArguments, environ)
            }
            guard spawned == 0 else {
                let command = argv.joined(separator: " ")
                throw ProcessError("cannot start `\(command)`: \(String(cString: strerror(spawned)))")
            }
            // The child's ends belong to the child now.
            for fd in pipes where fd != inputWrite && !readers.contains(fd) { close(fd) }
            return RunningProcess(
                pid: pid, group: newSession, input: inputWrite, inputBytes: inputBytes, stdout: readers[0],
                stderr: readers[1])
        } catch {
            for fd in pipes { close(fd) }
            throw error
        }
    }

    /// The absolute path of `program`: as given when it contains a slash, else the first hit in PATH
    /// and then in the sbin directories root's PATH may lack.
    public static func locate(_ program: String) throws -> String {
        if program.contains("/") { return program }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where access("\(directory)/\(program)", X_OK) == 0 {
            return "\(directory)/\(program)"
        }
        throw ProcessError("`\(program)` is not installed (run scripts/setup.sh as root)")
    }

    // posix_spawn_file_actions_addchdir_np (glibc 2.29): declared behind _GNU_SOURCE, so Swift does
    // not see it; found at run time instead.
    private typealias AddChdir = @convention(c) (
        UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>
    ) -> Int32
    private static func lookUpAddChdir() -> AddChdir? {
        // RTLD_DEFAULT is the null handle in glibc.
        dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }
    }

    // glibc's POSIX_SPAWN_SETSID (spawn.h, behind _GNU_SOURCE, so Swift does not see the macro).
    private static let spawnSetSID: Int32 = 0x80
}

/// A started program. Its captured output is read by a thread of its own from the start, so the
/// child never blocks on a full pipe however long the caller takes. Any thread may use it; `wait`
/// blocks other calls until the child has exited.
public final class RunningProcess: @unchecked Sendable {
    /// The child's process id.
    public let pid: pid_t
    private let group: Bool
    private let lock = NSLock()  // guards `exitStatus` and `input`; held by a blocking `wait`
    private var exitStatus: Int32?
    private var input: Int32
    // Guards the pump's state below, never held while blocking, so that the pump keeps draining the
    // child while `wait` blocks in waitpid (else a child filling its pipe would never exit).
    private let outputLock = NSLock()
    private var output = [Data(), Data()]
    private var pumpDone: Bool
    private let hasPump: Bool
    private var abandonPipes = false
    private let pumpFinished = DispatchSemaphore(value: 0)

    fileprivate init(pid: pid_t, group: Bool, input: Int32, inputBytes: Data?, stdout: Int32, stderr: Int32) {
        self.pid = pid
        self.group = group
        let pumpsInput = inputBytes != nil
        self.input = pumpsInput ? -1 : input
        pumpDone = stdout < 0 && stderr < 0 && !pumpsInput
        hasPump = !pumpDone
        if hasPump {
            let thread = Thread { [self] in
                pump(input: pumpsInput ? input : -1, bytes: inputBytes ?? Data(), readers: [stdout, stderr])
            }
            thread.name = "subprocess \(pid) io"
            thread.start()
        }
    }

    deinit {
        if input >= 0 { close(input) }
    }

    /// Whether the child has not exited yet (reaps it when it has).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return reap(block: false) == nil
    }

    /// Its exit status (128 + signal when a signal ended it), or nil while it runs.
    public var status: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return reap(block: false)
    }

    /// Its stdout so far, when captured.
    public var stdout: String {
        outputLock.lock()
        defer { outputLock.unlock() }
        return String(decoding: output[0], as: UTF8.self)
    }

    /// Its stderr so far, when captured.
    public var stderr: String {
        outputLock.lock()
        defer { outputLock.unlock() }
        return String(decoding: output[1], as: UTF8.self)
    }

    /// Sends `signal` to the child (to its whole process group when started with `newSession`).
    /// Does nothing once it has been reaped, so a recycled pid is never signalled.
    public func kill(_ signal: Int32 = SIGTERM) {
        lock.lock()
        defer { lock.unlock() }
        if reap(block: false) == nil { _ = Glibc.kill(group ? -pid : pid, signal) }
    }

    /// Waits (polling every 20 ms) until captured stdout satisfies `condition`, the output ends or
    /// `timeout` seconds pass; returns stdout as it is then.
    @discardableResult
    public func waitForOutput(timeout: Double, until condition: (String) -> Bool) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            outputLock.lock()
            let text = String(decoding: output[0], as: UTF8.self)
            let ended = pumpDone
            outputLock.unlock()
            if condition(text) || ended || Date() >= deadline { return text }
            usleep(20_000)
        }
    }

    /// Writes `text` to the child's stdin (started with `stdin: .pipe`); false when it closed its end.
    @discardableResult
    public func write(_ text: String) -> Bool {
        lock.lock()
        let fd = input
        lock.unlock()
        precondition(fd >= 0, "stdin is not an open pipe")
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { writeWithoutSIGPIPE(fd, $0) } == bytes.count
    }

    /// Closes the child's stdin pipe, so it reads end of file.
    public func closeInput() {
        lock.lock()
        defer { lock.unlock() }
        if input >= 0 { close(input) }
        input = -1
    }

    /// Waits for the child to exit and for its captured output to end, and returns both. With a
    /// `timeout` (seconds) a child still running then is killed with SIGKILL (its group with
    /// `newSession`). Output a surviving grandchild keeps writing is not waited for beyond 2 s.
    @discardableResult
    public func wait(timeout: Double? = nil) -> ProcessResult {
        closeInput()
        var timedOut = false
        lock.lock()
        if let timeout {
            let deadline = Date().addingTimeInterval(timeout)
            while reap(block: false) == nil && Date() < deadline {
                lock.unlock()
                usleep(5_000)
                lock.lock()
            }
            if reap(block: false) == nil {
                _ = Glibc.kill(group ? -pid : pid, SIGKILL)
                timedOut = true
            }
        }
        let status = reap(block: true)!
        lock.unlock()
        if hasPump {
            if pumpFinished.wait(timeout: .now() + 2) == .timedOut {
                outputLock.lock()
                abandonPipes = true
                outputLock.unlock()
                pumpFinished.wait()
            }
            pumpFinished.signal()  // later calls do not wait again
        }
        outputLock.lock()
        defer { outputLock.unlock() }
        return ProcessResult(
            status: status, stdout: String(decoding: output[0], as: UTF8.self),
            stderr: String(decoding: output[1], as: UTF8.self), timedOut: timedOut)
    }

    // With the lock held: the exit status once the child is reaped.
    private func reap(block: Bool) -> Int32? {
        if let exitStatus { return exitStatus }
        var raw: Int32 = 0
        while true {
            let result = waitpid(pid, &raw, block ? 0 : WNOHANG)
            if result == pid { break }
            if result == 0 { return nil }
            if errno == EINTR { continue }
            // ECHILD: someone else reaped it (a SIGCHLD handler set to SIG_IGN); nothing to report.
            exitStatus = -1
            return exitStatus
        }
        let signal = raw & 0x7f
        exitStatus = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        return exitStatus
    }

    // The I/O thread: writes `bytes` to `input` (then closes it) while draining both readers, all
    // with poll, until every pipe ends or `wait` gives up on them.
    private func pump(input: Int32, bytes: Data, readers: [Int32]) {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGPIPE)
        // A child that exits without reading its input makes the write fail with EPIPE instead of
        // killing the whole process; a SIGPIPE pending on this thread dies with it.
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        var input = input
        if input >= 0 { _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) | O_NONBLOCK) }
        var written = 0
        var open = readers
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open.contains(where: { $0 >= 0 }) || input >= 0 {
            outputLock.lock()
            let abandon = abandonPipes
            outputLock.unlock()
            if abandon { break }
            if input >= 0 && written == bytes.count {
                close(input)
                input = -1
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: input, events: Int16(POLLOUT), revents: 0))
            // A bounded wait, so that `abandonPipes` is seen.
            if poll(&fds, nfds_t(fds.count), 100) < 0 && errno != EINTR { break }
            if input >= 0 && fds[2].revents != 0 {
                let count = bytes.withUnsafeBytes { raw in
                    Glibc.write(input, raw.baseAddress! + written, raw.count - written)
                }
                if count > 0 {
                    written += count
                } else if errno != EAGAIN && errno != EINTR {
                    written = bytes.count  // the child closed its stdin: the rest is not wanted
                }
            }
            for index in 0..<2 where open[index] >= 0 && fds[index].revents != 0 {
                let count = read(open[index], &buffer, buffer.count)
                if count > 0 {
                    outputLock.lock()
                    output[index].append(contentsOf: buffer[0..<count])
                    outputLock.unlock()
                } else if count == 0 || errno != EINTR {
                    close(open[index])
                    open[index] = -1
                }
            }
        }
        for fd in open + [input] where fd >= 0 { close(fd) }
        outputLock.lock()
        pumpDone = true
        outputLock.unlock()
        pumpFinished.signal()
    }
}

// One blocking write of all of `bytes`, on any thread: SIGPIPE is blocked around it and a SIGPIPE it
// raised is consumed, so a child that closed its stdin makes this return short instead of killing us.
private func writeWithoutSIGPIPE(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    var pipeSignal = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    var previous = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    var written = 0
    while written < bytes.count {
        let count = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
        if count > 0 {
            written += count
        } else if errno != EINTR {
            if errno == EPIPE {
                var none = timespec()
                _ = sigtimedwait(&pipeSignal, nil, &none)
            }
            break
        }
    }
    return written
}
