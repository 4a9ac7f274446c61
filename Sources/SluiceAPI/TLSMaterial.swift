// The API's TLS certificate: the operator's own (PEM files), or a self-signed P-256 certificate
// generated on first start and kept in the data directory (`tls/cert.pem`, `tls/key.pem` with mode
// 0600), so clients can pin it across restarts. Clients of the self-signed one use `curl -k`.
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A certificate chain and its private key, in PEM.
public struct TLSMaterial: Sendable {
    /// The certificate chain, leaf first.
    public var certificateChainPEM: String
    /// The private key of the leaf.
    public var privateKeyPEM: String

    public init(certificateChainPEM: String, privateKeyPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// Reads an operator-supplied certificate chain and key.
    public static func load(certificatePath: String, keyPath: String) throws -> TLSMaterial {
        TLSMaterial(
            certificateChainPEM: try String(contentsOfFile: certificatePath, encoding: .utf8),
            privateKeyPEM: try String(contentsOfFile: keyPath, encoding: .utf8))
    }

    /// The certificate in `dataDirectory/tls`, created (self-signed, for `hosts`) when absent.
    public static func loadOrCreateSelfSigned(dataDirectory: URL, hosts: [String]) throws -> TLSMaterial {
        let directory = dataDirectory.appendingPathComponent("tls")
        let certificateURL = directory.appendingPathComponent("cert.pem")
        let keyURL = directory.appendingPathComponent("key.pem")
        let files = FileManager.default
        if files.fileExists(atPath: certificateURL.path), files.fileExists(atPath: keyURL.path) {
            return try load(certificatePath: certificateURL.path, keyPath: keyURL.path)
        }
        try files.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let material = try selfSigned(hosts: hosts)
        // The key is written first and only then the certificate, so a crash in between leaves no
        // certificate without its key; a key without certificate is simply replaced next start.
        try write(material.privateKeyPEM, to: keyURL, mode: 0o600)
        try write(material.certificateChainPEM, to: certificateURL, mode: 0o644)
        return material
    }

    /// A new self-signed server certificate valid for `hosts` (names and IP literals) and
    /// localhost, for 825 days (the longest lifetime common clients accept).
    public static func selfSigned(hosts: [String], now: Date = Date()) throws -> TLSMaterial {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Sluice")
            CommonName(hosts.first ?? "localhost")
        }
        var alternativeNames: [GeneralName] = []
        for host in Set(hosts + ["localhost", "127.0.0.1", "::1"]).sorted() {
            if let bytes = ipBytes(host) {
                alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                alternativeNames.append(.dnsName(host))
            }
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            // keyCertSign: the certificate is its own issuer, and BoringSSL (the CLI's `--cacert`, via
            // swift-nio-ssl) only accepts a self-signed trust anchor whose key may sign certificates.
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(alternativeNames)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(825 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key))
        return TLSMaterial(
            certificateChainPEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }

    /// The NIOSSL server configuration for this material.
    public func serverConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // How long a closing connection waits for the client's close_notify (NIOSSL's default is 5 s):
        // at SIGTERM every connected client (a wiretap stream, a keep-alive) would otherwise hold the
        // stop for the full 5 s, and a client that has gone never answers anyway.
        configuration.shutdownTimeout = .seconds(1)
        return configuration
    }

    static func ipBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }

    static func write(_ text: String, to url: URL, mode: Int) throws {
        try Data(text.utf8).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
    }
}
