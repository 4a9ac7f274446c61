// X.509 for TLS metadata matching (swift-certificates): the fields of the server's leaf
// certificate that `tls` rules match (DNS SANs, CN, DN, SHA-256 of the DER) and verification of
// the presented chain against a rule's `trust_anchors_pem`. Runs on the TLS inspector's cold
// path, once per TLS ≤ 1.2 handshake whose rule needs the certificate.

import Crypto
import Foundation
import SluicePolicy
import X509

/// Reads a leaf certificate's matchable fields.
enum CertificateInspection {
    /// The leaf's fields, or nil when it is not a parsable X.509 certificate (fail closed).
    /// The DN is the RFC 4514 string form (most specific RDN first, as `openssl -nameopt RFC2253`
    /// prints it), compared after `DistinguishedName.normalize` (docs/policy.md, "TLS").
    static func info(leafDER: ArraySlice<UInt8>) -> CertificateInfo? {
        let der = Array(leafDER)
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        var names: [String] = []
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for name in alternatives {
                if case .dnsName(let dns) = name { names.append(dns) }
            }
        }
        var commonName: String?
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                commonName = String(describing: attribute.value)  // the last (most specific) CN wins
            }
        }
        let digest = SHA256.hash(data: der)
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        return CertificateInfo(subjectAlternativeNames: names, commonName: commonName,
                               distinguishedName: String(describing: certificate.subject), sha256: hex)
    }
}

/// Verifies one handshake's chain against trust anchor sets, each set once (results cached).
/// swift-certificates' `Verifier` is async; the dataplane's worker threads are not tasks, so a
/// verification runs as a task the worker waits for (at most `timeout`; unverified after that).
final class CertificateChainVerifier: TLSChainVerifying, @unchecked Sendable {
    let chain: [[UInt8]]
    private var results: [[String]: Bool] = [:]
    /// Whether any anchor set asked for verified the chain (kept in the flow's record).
    private(set) var anyVerified = false
    static let timeout: DispatchTimeInterval = .seconds(2)

    init(chain: [[UInt8]]) { self.chain = chain }

    func verify(anchorsPEM: [String]) -> Bool {
        if let known = results[anchorsPEM] { return known }
        let result = CertificateChainVerifier.verify(chain: chain, anchorsPEM: anchorsPEM)
        results[anchorsPEM] = result
        if result { anyVerified = true }
        return result
    }

    /// RFC 5280 path validation (validity at the current time, basic constraints, name
    /// constraints) from the leaf through the presented intermediates to one of the anchors.
    static func verify(chain: [[UInt8]], anchorsPEM: [String]) -> Bool {
        guard let leafDER = chain.first, let leaf = try? Certificate(derEncoded: leafDER) else { return false }
        let intermediates = chain.dropFirst().compactMap { try? Certificate(derEncoded: $0) }
        let anchors = anchorsPEM.flatMap { CertificateChainVerifier.parsePEM($0) }
        guard !anchors.isEmpty else { return false }
        let outcome = VerificationOutcome()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            var verifier = Verifier(rootCertificates: CertificateStore(anchors)) { RFC5280Policy() }
            let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
            if case .validCertificate = result { outcome.set() }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else { return false }
        return outcome.value
    }

    /// Every certificate of a PEM bundle (a rule's entry may hold several).
    static func parsePEM(_ text: String) -> [Certificate] {
        var certificates: [Certificate] = []
        var rest = Substring(text)
        let end = "-----END CERTIFICATE-----"
        while let begin = rest.range(of: "-----BEGIN CERTIFICATE-----"),
              let close = rest.range(of: end, range: begin.upperBound..<rest.endIndex) {
            if let certificate = try? Certificate(pemEncoded: String(rest[begin.lowerBound..<close.upperBound])) {
                certificates.append(certificate)
            }
            rest = rest[close.upperBound...]
        }
        return certificates
    }
}

/// The answer of a verification task (written once before the semaphore is signalled).
private final class VerificationOutcome: @unchecked Sendable {
    private(set) var value = false
    func set() { value = true }
}
