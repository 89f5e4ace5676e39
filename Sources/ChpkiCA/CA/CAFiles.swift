import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The files of the CA directory, as views of `ca.db` (SPEC §6): root.pem/.key, intermediate.*,
/// previous-* and cross-signed.pem during a rotation, trust-bundle.pem, retired/, crl.pem,
/// index.txt(.attr). They are rendered from the database and written atomically after each
/// commit, and again by the recovery at the start of every command: a run killed between its
/// commit and its file writes leaves files that the next run rewrites, never a CA in between.
enum CAFiles {
    /// What the directory should hold.
    struct View {
        /// Name (relative to the CA directory) -> content.
        var files: [String: Data] = [:]
        /// Managed names that must not exist.
        var absent: Set<String> = []
    }

    /// Every top-level name chpki manages in the CA directory.
    static let managed: [String] = [
        CADirectory.rootCertificate, CADirectory.rootKey, CADirectory.intermediateCertificate, CADirectory.intermediateKey,
        CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.previousIntermediate, CADirectory.previousIntermediateKey,
        CADirectory.crossSigned, CADirectory.trustBundle, CADirectory.crl, OpenSSLIndex.fileName, OpenSSLIndex.attributesFileName,
    ]

    struct Inputs {
        var authorities: [IssuedCertificate]
        var authorityKeys: [SerialNumber: Data]
        var state: CADatabase.PublishedState
        var indexEntries: [OpenSSLIndex.Entry]
        var now: Date
    }

    package static func render(_ inputs: Inputs) -> View {
        var view = View()
        var untouched: Set<String> = []
        let authorities = inputs.authorities
        func place(_ certificate: IssuedCertificate?, _ certificateName: String, _ keyName: String) {
            guard let certificate else { return }
            view.files[certificateName] = Data(certificate.certificatePEM.utf8)
            // A CA key not in the database (a first-release CA whose root.key was moved offline) is left alone.
            if let key = inputs.authorityKeys[certificate.serial] { view.files[keyName] = key } else { untouched.insert(keyName) }
        }
        let roles = AuthorityRoles(authorities)
        place(roles.currentRoot, CADirectory.rootCertificate, CADirectory.rootKey)
        place(roles.primaryIntermediate, CADirectory.intermediateCertificate, CADirectory.intermediateKey)
        place(roles.previousRoot, CADirectory.previousRoot, CADirectory.previousRootKey)
        place(roles.previousIntermediate, CADirectory.previousIntermediate, CADirectory.previousIntermediateKey)
        // Every other live intermediate (growth keeps the older ones current; a rotation keeps the
        // previous one) under its serial, so `openssl verify` and `openssl ocsp -index` answer for
        // a leaf of any of them from ca/ alone.
        for intermediate in roles.otherLiveIntermediates {
            view.files[olderIntermediateName(intermediate.serial)] = Data(intermediate.certificatePEM.utf8)
        }
        if let cross = inputs.state.crossSignedPEM { view.files[CADirectory.crossSigned] = cross }
        let otherRoots = authorities.filter { $0.kind == .root && $0.authorityRole != .current }
        if !otherRoots.isEmpty, let root = roles.currentRoot {
            view.files[CADirectory.trustBundle] = Data(root.certificatePEM.utf8)
                + (roles.previousRoot.map { Data($0.certificatePEM.utf8) } ?? Data())
        }
        if let crl = inputs.state.crlPEM { view.files[CADirectory.crl] = crl } else { untouched.insert(CADirectory.crl) }
        view.files[OpenSSLIndex.fileName] = Data(OpenSSLIndex.render(inputs.indexEntries, now: inputs.now).utf8)
        view.files[OpenSSLIndex.attributesFileName] = Data(OpenSSLIndex.attributes.utf8)

        // Retired CA certificates (and keys) are kept in retired/, named after the root they belonged to.
        for retired in authorities where retired.authorityRole == .retired {
            let rootSerial = retired.kind == .root ? retired.serial : (retired.issuerSerial ?? retired.serial)
            let stem = Path.join(CADirectory.retired, "\(rootSerial.hex.prefix(12))-")
            let base = retired.kind == .root ? CADirectory.previousRoot : CADirectory.previousIntermediate
            view.files[stem + base] = Data(retired.certificatePEM.utf8)
            if let key = inputs.authorityKeys[retired.serial] {
                view.files[stem + base.replacingOccurrences(of: ".pem", with: ".key")] = key
            }
        }
        view.absent = Set(managed).subtracting(view.files.keys).subtracting(untouched)
        return view
    }

    static let olderIntermediatePrefix = "intermediate-"

    /// `intermediate-<serial hex>.pem`: a live intermediate that is not the newest (`intermediate.pem`).
    static func olderIntermediateName(_ serial: SerialNumber) -> String {
        "\(olderIntermediatePrefix)\(serial.hex).pem"
    }

    /// Files named like an older intermediate's that the view no longer holds (it was retired).
    static func leftoverIntermediates(_ view: View, in directory: CADirectory) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return entries.filter { name in
            name.hasPrefix(olderIntermediatePrefix) && name.hasSuffix(".pem") && view.files[name] == nil
        }.sorted()
    }

    /// The names whose file differs from `view` (content or mode), or exists though it should not.
    package static func differences(_ view: View, in directory: CADirectory) -> [String] {
        var names: [String] = []
        for (name, content) in view.files.sorted(by: { $0.key < $1.key }) {
            let path = directory.file(name)
            if RegularFile.contents(path, limit: ReadLimits.caFile) != content || !hasPrivateMode(path) { names.append(name) }
        }
        for name in view.absent.sorted() where FileManager.default.fileExists(atPath: directory.file(name)) {
            names.append(name)
        }
        return names + leftoverIntermediates(view, in: directory)
    }

    /// Makes the directory match `view`: new content first (atomic writes), removals last. A file
    /// that cannot be written is named with the system's reason (a full disk: "No space left on
    /// device"). `committed` says what this run committed to ca.db just before, if anything: the
    /// failure is then not a refusal (exit 2, "nothing was changed") but exit 3, saying what was
    /// committed and which file is stale until the next command rewrites it (SPEC §8).
    @discardableResult
    package static func write(_ view: View, to directory: CADirectory, committed: String? = nil) throws -> [String] {
        do { return try writeFiles(view, to: directory) } catch let failure as WriteFailure {
            guard let committed else {
                throw ChpkiError.input(.caWriteFailed, file: failure.path, field: nil, "cannot write: \(failure.reason) (ca.db is intact: free space and run the command again)")
            }
            throw ChpkiError(.caViewsStale, 
                "committed to \(directory.file(CADatabase.fileName)): \(committed); but \(failure.path) could not be written "
                + "(\(failure.reason)), so it is stale: the next chpki command (e.g. 'chpki list') rewrites it from ca.db")
        }
    }

    /// A file of the view that could not be written or removed, and the system's reason.
    struct WriteFailure: Error {
        var path: String
        var reason: String

        static func wrapping(_ path: String, _ body: () throws -> Void) throws {
            do { try body() } catch let failure as POSIXFailure {
                throw WriteFailure(path: path, reason: failure.reason)
            } catch {
                throw WriteFailure(path: path, reason: "\(error)")
            }
        }
    }

    private static func writeFiles(_ view: View, to directory: CADirectory) throws -> [String] {
        let changed = differences(view, in: directory)
        let changedSet = Set(changed)
        for (name, content) in view.files.sorted(by: { $0.key < $1.key }) where changedSet.contains(name) {
            try WriteFailure.wrapping(directory.file(name)) {
                if name.contains("/") {
                    let parent = directory.file(Path.parent(of: name))
                    try FileOperations.createDirectory(parent, mode: 0o700)
                }
                try AtomicFile.write(content, to: directory.file(name), mode: 0o600)
            }
        }
        var removed = false
        for name in view.absent.sorted() + leftoverIntermediates(view, in: directory) where changedSet.contains(name) {
            try WriteFailure.wrapping(directory.file(name)) { try FileOperations.removeFile(directory.file(name)) }
            removed = true
        }
        if removed { AtomicFile.syncDirectory(directory.path) }
        return changed
    }

    static func hasPrivateMode(_ path: String) -> Bool {
        guard let status = try? FileStatus.of(path) else { return false }
        return status.mode & 0o7777 == 0o600
    }

    /// Leftovers of runs killed mid-write: temporary files of `AtomicFile`, first-release staging
    /// (`*.new`, `.init-*`), an init-ca database never renamed into place.
    static func staleStaging(in directory: CADirectory) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var stale = entries.filter { name in
            (name.hasPrefix(".") && name.contains(".tmp-")) || name.hasPrefix(".init-") || name.hasPrefix(".ca.db.init-")
                || (name.hasSuffix(".new") && managed.contains(String(name.dropLast(4))))
        }
        let retired = directory.file(CADirectory.retired)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: retired)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
            stale.append(Path.join(CADirectory.retired, name))
        }
        return stale
    }

    static func removeStaging(_ names: [String], in directory: CADirectory) {
        for name in names { try? FileManager.default.removeItem(atPath: directory.file(name)) }
        if !names.isEmpty { AtomicFile.syncDirectory(directory.path) }
    }
}

/// Which CA certificate plays which part, from their roles: the one rule both the files and the
/// signer read.
struct AuthorityRoles {
    var currentRoot: IssuedCertificate?
    /// The current intermediate that signs leaves by default: the newest current one under the current root.
    var primaryIntermediate: IssuedCertificate?
    /// Every current intermediate (growth may add more, each with its own name constraints).
    var currentIntermediates: [IssuedCertificate]
    var previousRoot: IssuedCertificate?
    var previousIntermediate: IssuedCertificate?
    /// The live (current or previous) intermediates other than the primary one.
    var otherLiveIntermediates: [IssuedCertificate]

    init(_ authorities: [IssuedCertificate]) {
        currentRoot = authorities.last { $0.kind == .root && $0.authorityRole == .current }
        let root = currentRoot
        currentIntermediates = authorities.filter { $0.kind == .intermediate && $0.authorityRole == .current }
        primaryIntermediate = currentIntermediates.last { $0.issuerSerial == root?.serial }
        previousRoot = authorities.last { $0.kind == .root && $0.authorityRole == .previous }
        let previous = previousRoot
        previousIntermediate = authorities.last { $0.kind == .intermediate && $0.authorityRole == .previous && $0.issuerSerial == previous?.serial }
        let primary = primaryIntermediate
        otherLiveIntermediates = authorities.filter { authority in
            authority.kind == .intermediate && authority.authorityRole != .retired && authority.serial != primary?.serial
        }
    }
}
