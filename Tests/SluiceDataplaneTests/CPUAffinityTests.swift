// Pinning the calling thread (runs without root), on a thread of its own so the test runner's
// threads keep their affinity; and a worker taking the process's nice level back from a creator
// that had another (root: lowering a nice level needs CAP_SYS_NICE).

import Foundation
import Glibc
import Testing
@testable import SluiceDataplane

@Suite struct CPUAffinityTests {
    @Test func pinnedThreadRunsOnItsCPU() async throws {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        let target = cpus - 1
        let observed: Result<Int, SystemError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { () throws(SystemError) -> Int in
                    try CPUAffinity.pinCurrentThread(to: target)
                    return try CPUAffinity.currentCPU()
                })
            }
            thread.start()
        }
        #expect(try observed.get() == target)
    }

    @Test func invalidCPUIsAReadableError() {
        #expect(throws: SystemError.self) { try CPUAffinity.pinCurrentThread(to: -1) }
    }

    static let isRoot = getuid() == 0

    /// A thread created by a thread at nice 7 starts at nice 7; `adoptProcessPriority` brings it
    /// back to the main thread's level and names it.
    @Test(.enabled(if: isRoot, "lowering a thread's nice level back needs root (CAP_SYS_NICE)"))
    func workerTakesTheMainThreadsNiceLevel() async throws {
        errno = 0
        let mainNice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
        try #require(errno == 0)
        let observed: (before: Int32, after: Int32, name: String, error: SystemError?) =
            await withCheckedContinuation { continuation in
                Thread {
                    // The creator: nicer than the process, as a dispatch thread may be.
                    // `who` 0: this thread alone (Linux keeps nice per thread).
                    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, mainNice + 7)
                    Thread {
                        let before = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
                        var failure: SystemError?
                        do throws(SystemError) {
                            try CPUAffinity.adoptProcessPriority(name: "sluice-q7-test-long-name")
                        } catch {
                            failure = error
                        }
                        let after = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
                        let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                        continuation.resume(returning: (before, after, name, failure))
                    }.start()
                }.start()
            }
        #expect(observed.error == nil)
        #expect(observed.before == mainNice + 7)
        #expect(observed.after == mainNice)
        #expect(observed.name == "sluice-q7-test-\n")
    }
}
