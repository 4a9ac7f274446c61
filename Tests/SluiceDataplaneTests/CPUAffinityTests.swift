// Pinning the calling thread (runs without root), on a thread of its own so the test runner's
// threads keep their affinity.

import Foundation
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
}
