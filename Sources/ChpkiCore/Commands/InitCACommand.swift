import Foundation

/// `chpki init-ca`: resolves the options against the inventory, asks for the passphrase, creates the CA.
public enum InitCACommand {
    public enum NameConstraintsMode: String, CaseIterable, Sendable {
        case auto, none
    }

    public struct Options: Sendable {
        public var subject: String?
        public var key: KeyType?
        public var validity: String?
        public var nameConstraints: NameConstraintsMode = .auto
        public var intermediate = true
        public var passphraseFile: String?
        public var rootPassphraseFile: String?
        public var noPassphrase = false
        public var kdf: KDF = .scrypt

        public enum KDF: String, CaseIterable, Sendable { case scrypt, pbkdf2 }

        public init() {}
    }

    public static let defaultKey = KeyType.ecP384
    public static let defaultValidity = Period(amount: 10, unit: .years)

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let inventory = try settings.inventoryIfPresent()
        let subject = try resolveSubject(options.subject, inventory: inventory)
        let keyType = options.key ?? inventory?.ca.key ?? defaultKey
        let validity = try resolveValidity(options.validity, inventory: inventory)
        if options.noPassphrase && options.passphraseFile != nil {
            throw ChpkiError.input(.usageConflictingOptions, file: nil, field: "--no-passphrase", "cannot be combined with --passphrase-file")
        }
        var constraints: NameConstraints?
        if options.nameConstraints == .auto, let inventory {
            constraints = NameConstraintsPolicy.constraints(for: inventory)
        }
        let rootSource = PassphraseSource.root(file: options.rootPassphraseFile, environment: settings.environment)
        if options.noPassphrase && options.rootPassphraseFile != nil {
            throw ChpkiError.input(.usageConflictingOptions, file: nil, field: "--no-passphrase", "cannot be combined with \(PassphraseSource.rootFileOption)")
        }
        if !options.intermediate && !options.noPassphrase && rootSource.isGiven {
            throw ChpkiError.input(.usageConflictingOptions, file: nil, field: rootSource.field,
                "--no-intermediate: the root signs the leaves, so its key is an issuing key under the operations passphrase; drop the root passphrase or keep the intermediate")
        }
        // Refuse an existing CA before asking for a passphrase nobody will use.
        try CAInitializer.checkTarget(settings.caDirectory)
        let passphrase: Passphrase? = options.noPassphrase ? nil
            : try PassphraseSource(file: options.passphraseFile, environment: settings.environment)
                .newPassphrase(purpose: "the issuing keys (operations passphrase)")
        let rootPassphrase = try passphrase == nil || !options.intermediate ? nil : newRootPassphrase(rootSource, operations: passphrase!)
        let request = CAInitializer.Request(
            directory: settings.caDirectory, subject: subject, keyType: keyType, validity: validity,
            nameConstraints: constraints, intermediate: options.intermediate, passphrase: passphrase, rootPassphrase: rootPassphrase,
            protection: options.kdf == .scrypt ? .scryptDefault : .pbkdf2Default, now: try settings.now())
        let result = try CAInitializer.create(request) {
            reporter.progress("waiting for another chpki holding the lock on \(settings.caDirectory.path)")
        }
        try report(result, request: request, inventory: inventory, reporter: reporter)
    }

    /// The root passphrase of a new CA: from its file or variable, else asked twice at a terminal;
    /// nil (one passphrase for every key, said in the report) when neither is there. It must not be
    /// the operations passphrase, or whoever holds that one holds the root too.
    static func newRootPassphrase(_ source: PassphraseSource, operations: Passphrase) throws -> Passphrase? {
        guard source.isGiven || Terminal.standardInputIsATerminal else { return nil }
        let root = try source.newPassphrase(purpose: "the root key (root passphrase, kept apart from the operations one)")
        guard root != operations else {
            throw ChpkiError.input(.passphraseReused, file: nil, field: source.field,
                                   "the root passphrase is the operations passphrase: choose another, so that the weekly renewal never holds the root")
        }
        return root
    }

    static func resolveSubject(_ text: String?, inventory: Inventory?) throws -> DistinguishedName {
        if let text { return try DistinguishedName(parsing: text, field: "--subject") }
        var attributes: [DistinguishedName.Attribute] = []
        if let inventory {
            if let country = inventory.subject.c { attributes.append(.init("C", country)) }
            if let organization = inventory.subject.o { attributes.append(.init("O", organization)) }
        }
        attributes.append(.init("CN", inventory?.ca.commonName ?? CASettings.defaultCommonName))
        return DistinguishedName(attributes)
    }

    static func resolveValidity(_ text: String?, inventory: Inventory?) throws -> Period {
        guard let text else { return inventory?.ca.validity ?? defaultValidity }
        guard let period = Period(text) else {
            throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--validity", "'\(text)' is not \(Period.help)")
        }
        return period
    }

    struct Report: Encodable {
        var caDirectory: String
        var root: InspectCommand.CertificateItem
        var intermediate: InspectCommand.CertificateItem?
        var keyEncrypted: Bool
        var rootKeyApart: Bool
        var keyProtection: String
        var files: [String]

        enum CodingKeys: String, CodingKey {
            case caDirectory = "ca_dir", root, intermediate, keyEncrypted = "key_encrypted", rootKeyApart = "root_key_apart", keyProtection = "key_protection", files
        }
    }

    static func report(_ result: CAInitializer.Result, request: CAInitializer.Request, inventory: Inventory?, reporter: Reporter) throws {
        let protection = request.passphrase == nil ? "none (--no-passphrase)" : describe(request.protection)
        try reporter.emit(Report(
            caDirectory: request.directory.path, root: InspectCommand.CertificateItem(result.root),
            intermediate: result.intermediate.map(InspectCommand.CertificateItem.init), keyEncrypted: request.passphrase != nil,
            rootKeyApart: result.rootKeyApart, keyProtection: protection, files: result.files.sorted()))
        reporter.line("Created the root CA in \(request.directory.path)")
        reporter.line("  subject           \(result.root.subject.rfc4514)")
        reporter.line("  key               \(request.keyType.rawValue), \(protection)")
        reporter.line("  serial            \(result.root.serial.hex)")
        reporter.line("  valid until       \(RFC3339.format(result.root.notAfter))")
        reporter.line("  SHA-256           \(result.root.fingerprintSHA256)")
        if let constraints = (result.intermediate ?? result.root).nameConstraints {
            let holder = result.intermediate == nil ? "root" : "intermediate"
            reporter.line("  name constraints  on the \(holder): \(NameConstraintsPolicy.describe(constraints))")
        } else if inventory == nil && request.nameConstraints == nil {
            reporter.line("  name constraints  none (no inventory; pass --inventory to constrain the root to the cluster)")
        } else {
            reporter.line("  name constraints  none")
        }
        if let intermediate = result.intermediate {
            reporter.line("  intermediate      \(intermediate.subject.rfc4514), valid until \(RFC3339.format(intermediate.notAfter))")
            reporter.line("                    leaves and CRLs are signed by the intermediate; the root key signs only new intermediates (growth) and rotations")
        } else if result.root.nameConstraints != nil {
            reporter.note("--no-intermediate: the root itself is name-constrained, so a host or network added later needs a new root (chpki rotate-ca)")
        }
        if request.passphrase == nil {
            reporter.note("the CA key and the leaf keys in ca.db are stored UNENCRYPTED (--no-passphrase)")
        } else if result.rootKeyApart {
            reporter.line("  secrets           root.key under the root passphrase; the intermediate and the leaf keys under the operations passphrase")
        } else if request.intermediate {
            reporter.note("one passphrase wraps every key, the root's too (no \(PassphraseSource.rootFileOption) or \(PassphraseSource.rootEnvironmentVariable)): "
                          + "whoever holds it holds the root; give the root its own with 'chpki passphrase change --which root'")
        }
    }

    static func describe(_ protection: KeyProtection) -> String {
        switch protection {
        case let .scrypt(n, r, p): return "PKCS#8 encrypted (PBES2: scrypt N=\(n) r=\(r) p=\(p), AES-256-CBC)"
        case let .pbkdf2(iterations): return "PKCS#8 encrypted (PBES2: PBKDF2-HMAC-SHA256, \(iterations) iterations, AES-256-CBC)"
        }
    }
}
