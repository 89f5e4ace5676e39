import Foundation

/// Signs a batch of certificates on every core. Keys are generated (or the previous key reused)
/// and certificates signed in parallel; the CA key is shared read-only, each worker has its own
/// OpenSSL objects. Recording the batch is the session's (`CASession.issue`): one transaction.
public enum BatchIssuer {
    public struct Issued: Sendable {
        public var item: IssuancePlan.Item
        public var signed: SignedCertificate
        /// The leaf's private key, unencrypted PKCS#8 PEM (wiped when released).
        public var key: SecretBytes
    }

    public static func sign(_ items: [IssuancePlan.Item], signer: Signer, issuerNotAfter: Date, previousKeys: [SerialNumber: SecretBytes],
                            now: Date, workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                            progress: ProgressTicker? = nil) throws -> [Issued] {
        guard !items.isEmpty else { return [] }
        let slots = ResultSlots(count: items.count)
        let workerCount = max(1, min(workers, items.count))
        // Strided, not chunked: a batch often mixes slow RSA and fast EC keys service by service.
        DispatchQueue.concurrentPerform(iterations: workerCount) { workerIndex in
            let worker: SigningWorker
            do { worker = try SigningWorker(signer: signer) } catch {
                slots.set(workerIndex, .failure(error))
                return
            }
            var index = workerIndex
            while index < items.count, !slots.failed {
                let item = items[index]
                let previousKey = item.keepsKey ? item.previous.flatMap { previousKeys[$0.serial] } : nil
                slots.set(index, Result { try sign(item, previousKey: previousKey, worker: worker, issuerNotAfter: issuerNotAfter, now: now) })
                progress?.advance()
                index += workerCount
            }
        }
        progress?.finish()
        return try slots.values()
    }

    static func sign(_ item: IssuancePlan.Item, previousKey: SecretBytes?, worker: SigningWorker, issuerNotAfter: Date, now: Date) throws -> Issued {
        let profile = item.profile
        let key: PrivateKey
        let keyPEM: SecretBytes
        if let previousKey {
            key = try previousKey.withBytes { try worker.readKey(pem: Data($0)) }
            keyPEM = previousKey
        } else {
            key = try worker.generateKey(profile.keyType)
            var pem = try key.pkcs8PEM()
            keyPEM = SecretBytes(consuming: &pem)
        }
        let template = profile.template(serial: try SerialNumber.random(), now: now, issuerNotAfter: issuerNotAfter)
        return Issued(item: item, signed: try worker.sign(template, publicKeyOf: key), key: keyPEM)
    }
}

/// One result per batch index, each written by exactly one worker.
private final class ResultSlots: @unchecked Sendable {
    private var results: [Result<BatchIssuer.Issued, Error>?]
    private let lock = NSLock()
    private var anyFailure = false

    init(count: Int) {
        results = Array(repeating: nil, count: count)
    }

    var failed: Bool { lock.withLock { anyFailure } }

    func set(_ index: Int, _ result: Result<BatchIssuer.Issued, Error>) {
        lock.withLock {
            results[index] = result
            if case .failure = result { anyFailure = true }
        }
    }

    func values() throws -> [BatchIssuer.Issued] {
        for case let .failure(error)? in results { throw error }
        return try results.map { result in
            guard let result else { throw ChpkiError(.internalBug, "issuance stopped after an earlier failure") }
            return try result.get()
        }
    }
}
