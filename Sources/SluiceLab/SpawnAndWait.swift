// One-shot program runs for test and benchmark harnesses that start daemons (nsd, dnsperf):
// posix_spawn and waitpid with a clean signal state. The lab's own runner is `SystemCommandRunner`.
import Foundation

/// Runs a program, waits for it and returns its standard output. posix_spawn and waitpid directly, with
/// a clean signal mask and default handlers in the child: Foundation's Process can hang waiting for a
/// daemonising child here, and a child inheriting the test runner's blocked signals could not be stopped.
/// Without `capture` the output goes to /dev/null (a daemon could keep a pipe open forever).
public func spawnAndWait(_ path: String, _ arguments: [String], capture: Bool = true) -> String {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return "" }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if capture {
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    posix_spawn_file_actions_addclose(&actions, fds[1])
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
    close(fds[1])
    var output: [UInt8] = []
    if spawned == 0 {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fds[0], &buffer, buffer.count)
            if count <= 0 { break }
            output.append(contentsOf: buffer[0..<count])
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
    close(fds[0])
    return String(decoding: output, as: UTF8.self)
}
