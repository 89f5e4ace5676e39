import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Signs a batch of certificates on every core. Keys are generated (or the previous key reused)
/// and certificates signed in parallel; the CA key is shared read-only, each worker has its own
/// OpenSSL objects (`SigningWorker`). The caller records each leaf as it comes (`CASession.issue`:
/// one transaction, open while the workers sign).
public enum BatchIssuer {
    public struct Issued: Sendable {
        public var item: IssuancePlan.Item
        public var signed: SignedCertificate
        /// The leaf's private key, unencrypted PKCS#8 PEM (wiped when released).
        public var key: SecretBytes
    }

    /// Signs `items` on `workers` threads. `finish` runs on the signing thread too (what the caller
    /// makes of each signed leaf: its sealed key and database row), `record` on the calling thread,
    /// in item order, while the workers go on signing: recording overlaps with signing instead of
    /// following it. A failure of either stops the batch and is thrown once every worker has stopped.
    public static func sign<Output: Sendable>(_ items: [IssuancePlan.Item], signer: Signer, issuerNotAfter: Date,
                                              previousKeys: [SerialNumber: SecretBytes], now: Date,
                                              workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                                              progress: (any ProgressSink)? = nil,
                                              finish: @escaping @Sendable (Issued) throws -> Output,
                                              record: (Output) throws -> Void = { _ in }) throws -> [Output] {
        guard !items.isEmpty else { return [] }
        let results = ParallelResults<Output>(count: items.count)
        results.start(workers: workers, makeContext: { try SigningWorker(signer: signer) }, filled: { _ in progress?.advance() }) { worker, index in
            let item = items[index]
            let previousKey = item.keepsKey ? item.previous.flatMap { previousKeys[$0.serial] } : nil
            return try finish(try sign(item, previousKey: previousKey, worker: worker, issuerNotAfter: issuerNotAfter, now: now))
        }
        // Runs once the workers are done, on success and on failure alike (the progress line is cleared before any error).
        defer { progress?.finish() }
        do {
            for index in items.indices {
                guard let result = results.take(index) else { break }
                try record(try result.get())
            }
        } catch {
            results.stop()
            results.wait()
            throw error
        }
        results.wait()
        return try results.values()
    }

    package static func sign(_ item: IssuancePlan.Item, previousKey: SecretBytes?, worker: SigningWorker, issuerNotAfter: Date, now: Date) throws -> Issued {
        let profile = item.profile
        let key: PrivateKey
        let keyPEM: SecretBytes
        if let previousKey {
            key = try previousKey.withBytes { try worker.readKey(pem: Data($0)) }
            keyPEM = previousKey
        } else {
            key = try worker.generateKey(profile.keyType)
            if let pem = try key.ecPKCS8PEM() {
                keyPEM = pem
            } else {
                var pem = try key.pkcs8PEM()
                keyPEM = SecretBytes(consuming: &pem)
            }
        }
        let template = profile.template(serial: try SerialNumber.random(), now: now, issuerNotAfter: issuerNotAfter)
        return Issued(item: item, signed: try worker.sign(template, publicKeyOf: key), key: keyPEM)
    }
}
