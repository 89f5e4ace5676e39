/// An error chpki reports to the operator: one line, naming the file, field and reason, and a
/// stable `code` that scripts and tests match instead of the English (SPEC §1).
///
/// ## Throwing one (the whole API)
///
///     throw ChpkiError.input(.inventoryUnknownField, file: path, line: 3, field: "hosts[0].nmae", "unknown key")
///     throw ChpkiError(.archiveTruncated, "tar: the archive is truncated")
///     throw ChpkiError(.frontendInvalid, problems: problems)      // several lines, one code
///
/// The code comes first and has no default, so a new throw site cannot forget it. Pick the code
/// by what the operator (or an Ansible task) would do about it, not by the file it is thrown from;
/// reuse an existing one when the remedy is the same. A new code is three lines: a case of
/// `Code.Known` (its string is `area.kebab-name`, never changed once released), a `static let`,
/// and a row in docs/errors.md's tables (`ErrorCodeDocTests` fails until all three agree).
///
/// Like swift-certificates' `CertificateError`, equality is on the code alone: the message can
/// improve without breaking anyone. `kind` (and so the exit status) follows from the code:
/// `check.*` exit 1, `ca.views-stale` exit 3, every other code exit 2.
public struct ChpkiError: Error, CustomStringConvertible, Sendable, Hashable {
    public enum Kind: Sendable, Equatable {
        /// Bad input or a refused command (exit 2): nothing was changed.
        case refused
        /// A check that ran and failed (exit 1): verify, expiring.
        case checkFailed
        /// The change was committed to ca.db but a file rewritten from it (index.txt, crl.pem, a CA
        /// file) could not be written (exit 3): the next command rewrites it.
        case committedViewsStale
    }

    public var code: Code
    /// Each problem found, one report line each (a bundle's checks may find several at once).
    public var problems: [String]
    /// Where the problem is, when an input error says so: for `--json`'s error object.
    public var file: String?
    public var line: Int?
    public var field: String?

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.problems = [message]
    }

    /// Several problems found at once: each is its own `chpki: error:` line.
    public init(_ code: Code, problems: [String]) {
        self.code = code
        self.problems = problems
    }

    /// `file: field: reason`, the shape every input error takes.
    public static func input(_ code: Code, file: String?, line: Int? = nil, field: String?, _ reason: String) -> ChpkiError {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        }
        if let field, !field.isEmpty { location += "\(field): " }
        var error = ChpkiError(code, location + reason)
        error.file = file
        error.line = file == nil ? nil : line
        error.field = field?.isEmpty == false ? field : nil
        return error
    }

    public var kind: Kind { code.kind }
    public var message: String { problems.joined(separator: "\n") }
    public var exitCode: Int32 {
        switch kind {
        case .refused: return 2
        case .checkFailed: return 1
        case .committedViewsStale: return 3
        }
    }
    public var description: String { message }

    public static func == (lhs: ChpkiError, rhs: ChpkiError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension ChpkiError {
    /// A stable, documented name for one kind of refusal: `area.kebab-name` (docs/errors.md).
    /// A struct over a private enum, as swift-certificates' `CertificateError.ErrorCode`: codes can
    /// be added without breaking a `switch` anywhere, and only the ones listed here exist.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Known: String, CaseIterable {
            case usageInvalidArgument = "usage.invalid-argument"
            case usageUnknownCommand = "usage.unknown-command"
            case usageConflictingOptions = "usage.conflicting-options"
            case usageMissingOption = "usage.missing-option"
            case usageInvalidValue = "usage.invalid-value"
            case subjectInvalid = "subject.invalid"
            case fileMissing = "file.missing"
            case fileNotRegular = "file.not-regular"
            case fileNotDirectory = "file.not-directory"
            case fileTooLarge = "file.too-large"
            case fileUnreadable = "file.unreadable"
            case outputUnusable = "output.unusable"
            case outputNotEmpty = "output.not-empty"
            case inventorySyntax = "inventory.syntax"
            case inventoryWrongType = "inventory.wrong-type"
            case inventoryUnknownField = "inventory.unknown-field"
            case inventoryMissingField = "inventory.missing-field"
            case inventoryInvalidName = "inventory.invalid-name"
            case inventoryInvalidAddress = "inventory.invalid-address"
            case inventoryInvalidValue = "inventory.invalid-value"
            case inventoryDuplicate = "inventory.duplicate"
            case inventoryConflict = "inventory.conflict"
            case inventoryUnknownHost = "inventory.unknown-host"
            case inventoryUnknownGroup = "inventory.unknown-group"
            case inventoryUnknownService = "inventory.unknown-service"
            case inventoryAnsibleFailed = "inventory.ansible-failed"
            case passphraseMissing = "passphrase.missing"
            case passphraseTooShort = "passphrase.too-short"
            case passphraseMismatch = "passphrase.mismatch"
            case passphraseInvalid = "passphrase.invalid"
            case passphraseWrong = "passphrase.wrong"
            case passphraseReused = "passphrase.reused"
            case passphraseRootNeeded = "passphrase.root-needed"
            case passphraseNotApplicable = "passphrase.not-applicable"
            case caNotFound = "ca.not-found"
            case caExists = "ca.exists"
            case caDirectoryUnusable = "ca.directory-unusable"
            case caCorrupt = "ca.corrupt"
            case caKeyUnavailable = "ca.key-unavailable"
            case caKeyMismatch = "ca.key-mismatch"
            case caWriteFailed = "ca.write-failed"
            case caViewsStale = "ca.views-stale"
            case caClockBeforeIssuer = "ca.clock-before-issuer"
            case caClockWentBack = "ca.clock-went-back"
            case caNameConstraints = "ca.name-constraints"
            case caRotationUnderWay = "ca.rotation-under-way"
            case caNoRotation = "ca.no-rotation"
            case caRotationUnfinished = "ca.rotation-unfinished"
            case caHostsNotInstalled = "ca.hosts-not-installed"
            case renewUnsupportedKey = "renew.unsupported-key"
            case revokeNoMatch = "revoke.no-match"
            case issueAdminIsNode = "issue.admin-is-node"
            case bundleNotIssued = "bundle.not-issued"
            case bundleNoServiceOnHost = "bundle.no-service-on-host"
            case bundleNotABundle = "bundle.not-a-bundle"
            case bundleOldLayout = "bundle.old-layout"
            case bundleUnsafePath = "bundle.unsafe-path"
            case manifestInvalid = "manifest.invalid"
            case manifestUnsupportedFormat = "manifest.unsupported-format"
            case manifestUnsafePath = "manifest.unsafe-path"
            case templateUnknown = "template.unknown"
            case templateInvalid = "template.invalid"
            case templateUntrusted = "template.untrusted"
            case archiveTooLarge = "archive.too-large"
            case archiveTruncated = "archive.truncated"
            case archiveCorrupt = "archive.corrupt"
            case archiveUnsafeMember = "archive.unsafe-member"
            case archiveDuplicateMember = "archive.duplicate-member"
            case archivePathTooLong = "archive.path-too-long"
            case secretsTooLarge = "secrets.too-large"
            case secretsNotABundle = "secrets.not-a-bundle"
            case secretsDecryptFailed = "secrets.decrypt-failed"
            case secretsUnsupportedVersion = "secrets.unsupported-version"
            case secretsWrongKind = "secrets.wrong-kind"
            case secretsMissingFile = "secrets.missing-file"
            case secretsInvalid = "secrets.invalid"
            case frontendInvalid = "frontend.invalid"
            case installConflict = "install.conflict"
            case installUnsafePath = "install.unsafe-path"
            case rolloutUnknownHost = "rollout.unknown-host"
            case rolloutNoHosts = "rollout.no-hosts"
            case rolloutNotAHostTree = "rollout.not-a-host-tree"
            case rolloutInvalidOperations = "rollout.invalid-operations"
            case rolloutInvalidPlan = "rollout.invalid-plan"
            case inspectNothingFound = "inspect.nothing-found"
            case inspectUnparsable = "inspect.unparsable"
            case checkVerifyFailed = "check.verify-failed"
            case checkExpiring = "check.expiring"
            case checkCRLStale = "check.crl-stale"
            case checkFrontendsDiffer = "check.frontends-differ"
            case checkRolloutFailed = "check.rollout-failed"
            case checkRolloutStale = "check.rollout-stale"
            case systemError = "system.error"
            case systemNoSpace = "system.no-space"
            case systemIOError = "system.io-error"
            case systemProgram = "system.program"
            case opensslError = "openssl.error"
            case cryptoAuthenticationFailed = "crypto.authentication-failed"
            case databaseError = "database.error"
            case internalBug = "internal.bug"
        }

        private let known: Known
        private init(_ known: Known) { self.known = known }

        /// The code as scripts see it, e.g. `inventory.unknown-field`.
        public var rawValue: String { known.rawValue }
        public var description: String { known.rawValue }
        /// Every code chpki can report, in the order of docs/errors.md.
        public static var all: [Code] { Known.allCases.map(Code.init) }

        /// What the code means for the exit status.
        public var kind: Kind {
            if rawValue.hasPrefix("check.") { return .checkFailed }
            if known == .caViewsStale { return .committedViewsStale }
            return .refused
        }

        /// The command line does not parse: an unknown option, a missing or extra argument, a value of the wrong type.
        public static let usageInvalidArgument = Code(.usageInvalidArgument)
        /// No command of that name.
        public static let usageUnknownCommand = Code(.usageUnknownCommand)
        /// Two options that exclude each other were given together (for example `--no-passphrase` with `--passphrase-file`, `--days` with `--lifetime`).
        public static let usageConflictingOptions = Code(.usageConflictingOptions)
        /// An option the command needs in this form was not given (for example `--from` or `--out`).
        public static let usageMissingOption = Code(.usageMissingOption)
        /// The value of an option, argument or environment variable is not accepted (a period, host name, IP address, key type, CRL lifetime, admin name, `CHPKI_NOW`...).
        public static let usageInvalidValue = Code(.usageInvalidValue)
        /// A distinguished name given as text (`--subject`) does not parse or breaks a rule (no CN, unknown attribute, empty value...).
        public static let subjectInvalid = Code(.subjectInvalid)
        /// A file or directory named on the command line, in the environment or in the inventory does not exist.
        public static let fileMissing = Code(.fileMissing)
        /// A path that must be a regular file is something else (a directory, a device, a symlink where none is allowed).
        public static let fileNotRegular = Code(.fileNotRegular)
        /// A path that must be a directory is something else.
        public static let fileNotDirectory = Code(.fileNotDirectory)
        /// A file is larger than chpki reads for its purpose (the limits of SPEC §1).
        public static let fileTooLarge = Code(.fileTooLarge)
        /// A file exists but cannot be read (permissions, I/O error).
        public static let fileUnreadable = Code(.fileUnreadable)
        /// The output directory (`--out`) exists and is not a directory, its parent is missing, or it cannot be created.
        public static let outputUnusable = Code(.outputUnusable)
        /// The output directory holds files chpki did not write there (`chpki demo`).
        public static let outputNotEmpty = Code(.outputNotEmpty)
        /// The inventory is not valid YAML (or the Ansible inventory not valid `--list` JSON), or not UTF-8 text; `line` says where.
        public static let inventorySyntax = Code(.inventorySyntax)
        /// A value has the wrong shape: a scalar where a list or mapping is expected, or the reverse.
        public static let inventoryWrongType = Code(.inventoryWrongType)
        /// A key the inventory format does not know (often a typo; YAML merge keys are refused too).
        public static let inventoryUnknownField = Code(.inventoryUnknownField)
        /// A key that must be present is missing, or a list that needs members is empty (no hosts, a VIP without addresses, a host without known IPs).
        public static let inventoryMissingField = Code(.inventoryMissingField)
        /// A domain, host, VIP, service or group name is not a valid RFC 1123 name, not under the domain, or too long.
        public static let inventoryInvalidName = Code(.inventoryInvalidName)
        /// An IP address does not parse.
        public static let inventoryInvalidAddress = Code(.inventoryInvalidAddress)
        /// A value is not accepted: a period, key type, certificate mode, DN attribute, or `renew_before` not shorter than `validity`.
        public static let inventoryInvalidValue = Code(.inventoryInvalidValue)
        /// Something that must be unique appears twice: a host, short name, IP address, VIP, group, list item or YAML key.
        public static let inventoryDuplicate = Code(.inventoryDuplicate)
        /// Two parts of the inventory contradict each other (a VIP or service named like a host, a VIP address that is a host's, an admin name that is a host's, `name:` differing from the service key).
        public static let inventoryConflict = Code(.inventoryConflict)
        /// A host named (in a service's `hosts:` or with `--host`) is not a host of the inventory.
        public static let inventoryUnknownHost = Code(.inventoryUnknownHost)
        /// A service's `hosts:` names a group no host belongs to.
        public static let inventoryUnknownGroup = Code(.inventoryUnknownGroup)
        /// A service named on the command line (or needed, such as `opensearch` for an admin certificate) is not in the inventory.
        public static let inventoryUnknownService = Code(.inventoryUnknownService)
        /// The Ansible inventory could not be read: `ansible-inventory` is missing, failed or printed no text.
        public static let inventoryAnsibleFailed = Code(.inventoryAnsibleFailed)
        /// A passphrase is needed and none was given, and there is no terminal to ask on.
        public static let passphraseMissing = Code(.passphraseMissing)
        /// A new passphrase is shorter than the minimum.
        public static let passphraseTooShort = Code(.passphraseTooShort)
        /// The two entries of a new passphrase typed on the terminal differ.
        public static let passphraseMismatch = Code(.passphraseMismatch)
        /// A passphrase is empty or contains a NUL byte.
        public static let passphraseInvalid = Code(.passphraseInvalid)
        /// The passphrase does not open the key (CA key, leaf-key store, or the key given to `inspect`).
        public static let passphraseWrong = Code(.passphraseWrong)
        /// The root passphrase given is the operations passphrase.
        public static let passphraseReused = Code(.passphraseReused)
        /// The command needs the root passphrase (the root key is under its own passphrase) and none was given.
        public static let passphraseRootNeeded = Code(.passphraseRootNeeded)
        /// `chpki passphrase change` was asked for a passphrase this CA does not have (a `--no-passphrase` CA, a root without its own passphrase, a root key not in ca.db).
        public static let passphraseNotApplicable = Code(.passphraseNotApplicable)
        /// There is no CA in the directory chpki looked at.
        public static let caNotFound = Code(.caNotFound)
        /// `init-ca` found a CA (or CA files) where it was asked to create one; it never overwrites one.
        public static let caExists = Code(.caExists)
        /// The CA directory is not a directory, not writable, cannot be created or listed.
        public static let caDirectoryUnusable = Code(.caDirectoryUnusable)
        /// ca.db or a CA file does not hold what chpki wrote: not a chpki database, an unreadable row or certificate, a missing key-wrapping record, a sealed key that does not authenticate, a legacy CA without its root.
        public static let caCorrupt = Code(.caCorrupt)
        /// A CA key chpki needs is not there (the root key kept offline, a CA certificate whose key is not in the CA).
        public static let caKeyUnavailable = Code(.caKeyUnavailable)
        /// A CA key does not belong to its certificate, or changed under a passphrase change.
        public static let caKeyMismatch = Code(.caKeyMismatch)
        /// A CA file could not be written before the change was committed: nothing changed.
        public static let caWriteFailed = Code(.caWriteFailed)
        /// The change was committed to ca.db, but a file derived from it (index.txt, crl.pem, a CA file) could not be written (exit 3).
        public static let caViewsStale = Code(.caViewsStale)
        /// The system clock is before the issuing CA's notBefore: chpki refuses to sign.
        public static let caClockBeforeIssuer = Code(.caClockBeforeIssuer)
        /// The system clock is before a change this CA already recorded: a CRL signed now would go back in time.
        public static let caClockWentBack = Code(.caClockWentBack)
        /// A name to be certified is outside the issuing CA's name constraints, or cannot be constrained (not a DNS name or IP address).
        public static let caNameConstraints = Code(.caNameConstraints)
        /// `rotate-ca` was asked while a rotation is already under way.
        public static let caRotationUnderWay = Code(.caRotationUnderWay)
        /// `rotate-ca --finish` was asked with no rotation under way.
        public static let caNoRotation = Code(.caNoRotation)
        /// `rotate-ca --finish` was asked while valid certificates still chain only to the old root.
        public static let caRotationUnfinished = Code(.caRotationUnfinished)
        public static let caHostsNotInstalled = Code(.caHostsNotInstalled)
        /// A certificate's key type cannot be renewed by chpki.
        public static let renewUnsupportedKey = Code(.renewUnsupportedKey)
        /// The serial or host/service given to `revoke` matches no valid certificate of this CA.
        public static let revokeNoMatch = Code(.revokeNoMatch)
        /// The OpenSearch admin DN would be matched by a `nodes_dn` entry: a node certificate would be an admin.
        public static let issueAdminIsNode = Code(.issueAdminIsNode)
        /// A certificate a bundle needs is missing or out of date in the CA.
        public static let bundleNotIssued = Code(.bundleNotIssued)
        /// The host given with `--host` runs none of the services asked for.
        public static let bundleNoServiceOnHost = Code(.bundleNoServiceOnHost)
        /// The directory given to `verify --bundle` holds no host tree laid out by `chpki bundle`.
        public static let bundleNotABundle = Code(.bundleNotABundle)
        /// The bundle was laid out by an older chpki.
        public static let bundleOldLayout = Code(.bundleOldLayout)
        /// A path chpki writes or reads under a root leaves it, or passes through a symlink.
        public static let bundleUnsafePath = Code(.bundleUnsafePath)
        /// A MANIFEST.json is not one chpki wrote: not JSON, another generator, a field that does not decode or breaks a rule.
        public static let manifestInvalid = Code(.manifestInvalid)
        /// A MANIFEST.json has a format this chpki does not read.
        public static let manifestUnsupportedFormat = Code(.manifestUnsupportedFormat)
        /// A MANIFEST.json names a path outside the root.
        public static let manifestUnsafePath = Code(.manifestUnsafePath)
        /// No template of that name.
        public static let templateUnknown = Code(.templateUnknown)
        /// A template is not UTF-8 text or does not parse.
        public static let templateInvalid = Code(.templateInvalid)
        /// A template override directory or file is writable by someone other than root or the invoker, or is a symlink.
        public static let templateUntrusted = Code(.templateUntrusted)
        /// An archive, or one of its members, is larger than chpki accepts.
        public static let archiveTooLarge = Code(.archiveTooLarge)
        /// An archive ends early.
        public static let archiveTruncated = Code(.archiveTruncated)
        /// An archive does not decode (bad checksum, bad header field, data after the end).
        public static let archiveCorrupt = Code(.archiveCorrupt)
        /// An archive holds a link, a device, a path outside the root, or another member chpki refuses.
        public static let archiveUnsafeMember = Code(.archiveUnsafeMember)
        /// An archive holds the same path twice.
        public static let archiveDuplicateMember = Code(.archiveDuplicateMember)
        /// A path is too long for the ustar format.
        public static let archivePathTooLong = Code(.archivePathTooLong)
        /// A secret bundle, or a file for it, is larger than a secret bundle may be.
        public static let secretsTooLarge = Code(.secretsTooLarge)
        /// The file is not a secret bundle of the kind expected (not a tar.gz nor a CMS envelope, no or a broken manifest).
        public static let secretsNotABundle = Code(.secretsNotABundle)
        /// An encrypted secret bundle does not decrypt: wrong passphrase or damaged file.
        public static let secretsDecryptFailed = Code(.secretsDecryptFailed)
        /// The secret bundle's manifest version is not one this chpki reads.
        public static let secretsUnsupportedVersion = Code(.secretsUnsupportedVersion)
        /// The secret bundle is of another kind or flavor than the command expects (a backend bundle given to `install-frontend`, a chef bundle for cinc).
        public static let secretsWrongKind = Code(.secretsWrongKind)
        /// A file the secret bundle must hold is missing from it.
        public static let secretsMissingFile = Code(.secretsMissingFile)
        /// The secrets file does not parse or lacks required credentials, or a file of the bundle fails its checks.
        public static let secretsInvalid = Code(.secretsInvalid)
        /// A frontend root lacks, cannot read, or holds inconsistent files a frontend bundle or comparison needs (each problem is its own line; `problems` in JSON).
        public static let frontendInvalid = Code(.frontendInvalid)
        /// Installing a secret bundle would overwrite files that differ.
        public static let installConflict = Code(.installConflict)
        /// Installing a secret bundle would write through a symlink or outside the root.
        public static let installUnsafePath = Code(.installUnsafePath)
        /// `--hosts` names a host with no bundle in the bundle directory.
        public static let rolloutUnknownHost = Code(.rolloutUnknownHost)
        /// No host was named.
        public static let rolloutNoHosts = Code(.rolloutNoHosts)
        /// The bundle directory holds an entry that is not a host tree chpki lays out.
        public static let rolloutNotAHostTree = Code(.rolloutNotAHostTree)
        public static let rolloutInvalidOperations = Code(.rolloutInvalidOperations)
        /// `rollout-check --plan`: not a plan `chpki rollout-plan --json` prints (file and field named).
        public static let rolloutInvalidPlan = Code(.rolloutInvalidPlan)
        /// `inspect` found no certificate, key, CSR or CRL in the file.
        public static let inspectNothingFound = Code(.inspectNothingFound)
        /// A PEM block does not decode.
        public static let inspectUnparsable = Code(.inspectUnparsable)
        /// `verify` found violations (exit 1); the JSON report lists them.
        public static let checkVerifyFailed = Code(.checkVerifyFailed)
        /// `expiring` found certificates within their renewal window (exit 1).
        public static let checkExpiring = Code(.checkExpiring)
        /// `expiring` found a CRL near or past its nextUpdate (exit 1).
        public static let checkCRLStale = Code(.checkCRLStale)
        /// `bundle-frontend --compare` found differences (exit 1).
        public static let checkFrontendsDiffer = Code(.checkFrontendsDiffer)
        public static let checkRolloutFailed = Code(.checkRolloutFailed)
        /// `rollout-check`: a service answers with another leaf than the host installed, past the
        /// grace (exit 1); `field` names the service, whose commands an executor runs once more.
        public static let checkRolloutStale = Code(.checkRolloutStale)
        /// A system call failed (the message names the call and the OS error).
        public static let systemError = Code(.systemError)
        /// The disk is full while writing the file named.
        public static let systemNoSpace = Code(.systemNoSpace)
        /// An I/O error while writing the file named.
        public static let systemIOError = Code(.systemIOError)
        /// A program chpki runs is missing, cannot start or printed something unexpected.
        public static let systemProgram = Code(.systemProgram)
        /// OpenSSL refused an operation (the message carries its error queue).
        public static let opensslError = Code(.opensslError)
        /// Encrypted data did not authenticate: a wrong passphrase or altered data.
        public static let cryptoAuthenticationFailed = Code(.cryptoAuthenticationFailed)
        /// SQLite failed on the CA database named in `file` (locked, read-only, corrupt, full).
        public static let databaseError = Code(.databaseError)
        /// chpki reached a state it should never reach.
        public static let internalBug = Code(.internalBug)
    }
}
