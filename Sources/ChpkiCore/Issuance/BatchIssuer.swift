import Foundation

/// Signs a batch of certificates on every core, then records the whole batch in one exclusive
/// transaction: all of it commits or none (SPEC §6). Keys are generated and certificates signed
/// in parallel; the CA key is shared read-only, each worker has its own OpenSSL objects.
public enum BatchIssuer {
    public struct Issued: Sendable {
        public var item: IssuancePlan.Item
        public var record: CertificateRecord
    }

    public static func issue(_ items: [IssuancePlan.Item], authority: CertificateAuthority, signer: Signer, now: Date,
                             workers: Int = ProcessInfo.processInfo.activeProcessorCount,
                             progress: ProgressTicker? = nil,
                             phaseDone: (String) -> Void = { _ in }) throws -> [Issued] {
        guard !items.isEmpty else { return [] }
        let issuer = authority.issuingCertificate
        let issuerSerial = issuer.serial.hex
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
                slots.set(index, Result { try sign(items[index], worker: worker, issuerNotAfter: issuer.notAfter,
                                                   issuerSerial: issuerSerial, now: now) })
                progress?.advance()
                index += workerCount
            }
        }
        progress?.finish()
        let records = try slots.values()
        phaseDone("signed \(items.count) certificates on \(workerCount) threads")
        try authority.database.change { db in
            for (item, var record) in zip(items, records) {
                if let previous = item.previous {
                    try db.execute(sql: "UPDATE certificates SET status = 'superseded', superseded_by = ? WHERE serial = ? AND status = 'valid'",
                                   arguments: [record.serial, previous.serial])
                }
                try record.insert(db)
            }
        }
        phaseDone("recorded them in one transaction")
        return zip(items, records).map { Issued(item: $0, record: $1) }
    }

    static func sign(_ item: IssuancePlan.Item, worker: SigningWorker, issuerNotAfter: Date, issuerSerial: String, now: Date) throws -> CertificateRecord {
        let profile = item.profile
        let key: PrivateKey
        let keyPEM: String
        if item.keepsKey, let previousKey = item.previous?.privateKeyPEM {
            key = try worker.readKey(pem: Data(previousKey.utf8))
            keyPEM = previousKey
        } else {
            key = try worker.generateKey(profile.keyType)
            keyPEM = String(decoding: try key.pkcs8PEM(), as: UTF8.self)
        }
        let template = profile.template(serial: try SerialNumber.random(), now: now, issuerNotAfter: issuerNotAfter)
        let signed = try worker.sign(template, publicKeyOf: key)
        return CertificateRecord(signed: signed, profile: profile, issuerSerial: issuerSerial, privateKeyPEM: keyPEM, createdAt: now)
    }
}

/// One result per batch index, each written by exactly one worker.
private final class ResultSlots: @unchecked Sendable {
    private var results: [Result<CertificateRecord, Error>?]
    private let lock = NSLock()
    private var anyFailure = false

    init(count: Int) {
        results = Array(repeating: nil, count: count)
    }

    var failed: Bool { lock.withLock { anyFailure } }

    func set(_ index: Int, _ result: Result<CertificateRecord, Error>) {
        lock.withLock {
            results[index] = result
            if case .failure = result { anyFailure = true }
        }
    }

    func values() throws -> [CertificateRecord] {
        for case let .failure(error)? in results { throw error }
        return try results.map { result in
            guard let result else { throw ChpkiError(.refused, "issuance stopped after an earlier failure") }
            return try result.get()
        }
    }
}
