// Per-client-address limit on failed authentications: a token bucket per address that only
// failures drain. A client that keeps guessing tokens gets 429 with Retry-After instead of more
// guesses; clients that authenticate correctly are never affected. Numbers: docs/api.md.
import Foundation
import Synchronization

/// Counts failed authentications per client address. Safe to call from any task (one Mutex).
public final class FailedAuthLimiter: Sendable {
    /// Failures an address may make in a burst.
    public let burst: Double
    /// Failures per second regained.
    public let refillPerSecond: Double
    /// The most addresses tracked; the fullest buckets are forgotten first beyond it.
    public let maxTracked: Int

    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    public init(burst: Int = 10, refillPerSecond: Double = 0.2, maxTracked: Int = 10_000) {
        self.burst = Double(burst)
        self.refillPerSecond = refillPerSecond
        self.maxTracked = maxTracked
    }

    /// Seconds until `address` may try again, or nil when it may authenticate now.
    public func retryAfter(_ address: String, now: Double = Date().timeIntervalSince1970) -> Int? {
        buckets.withLock { buckets in
            guard let bucket = buckets[address] else { return nil }
            let tokens = min(burst, bucket.tokens + (now - bucket.updated) * refillPerSecond)
            if tokens >= 1 { return nil }
            return Int(((1 - tokens) / refillPerSecond).rounded(.up))
        }
    }

    /// Records a failed authentication from `address`.
    public func recordFailure(_ address: String, now: Double = Date().timeIntervalSince1970) {
        buckets.withLock { buckets in
            var bucket = buckets[address] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = max(0, min(burst, bucket.tokens + (now - bucket.updated) * refillPerSecond) - 1)
            bucket.updated = now
            buckets[address] = bucket
            if buckets.count > maxTracked {
                // Forget addresses that have (nearly) refilled: they are not attacking now.
                let refilled = buckets.filter { $0.value.tokens + (now - $0.value.updated) * refillPerSecond >= burst }
                for key in refilled.keys { buckets[key] = nil }
            }
        }
    }
}
