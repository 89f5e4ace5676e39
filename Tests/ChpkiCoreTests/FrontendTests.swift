import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiSecretBundles
@testable import ChpkiCA

@Suite("veil secrets: AES-256-CBC through EVP")
struct VeilTests {
    /// The test vector of the veil gem's own spec (spec/cipher/v2_spec.rb): Ruby's OpenSSL wrote it.
    @Test("decrypts the veil gem's Veil::Cipher::V2 test vector")
    func veilGemVector() throws {
        let key = Array("thursdayfridaysaturdaysun32bytes".utf8)
        let iv = Array("mondaytue16bytes".utf8)
        let ciphertext = try #require(Data(base64Encoded: "qS6SRmgOgSta2jSdD60sJmu83cRgy4DUJ2nKZwStrqs="))
        let plaintext = try AES256CBC.decrypt(ciphertext, key: key, iv: iv)
        #expect(String(decoding: plaintext, as: UTF8.self) == #"{ "chef-server": "test-value" }"#)
        #expect(try AES256CBC.encrypt(plaintext, key: key, iv: iv) == ciphertext)
    }

    @Test("refuses a key or IV of the wrong length, and a wrong key")
    func wrongKeys() throws {
        let key = try randomBytes(32), iv = try randomBytes(16)
        let ciphertext = try AES256CBC.encrypt(Data("{\"a\":{}}".utf8), key: key, iv: iv)
        #expect(throws: OpenSSLError.self) { try AES256CBC.decrypt(ciphertext, key: Array(key.prefix(16)), iv: iv) }
        #expect(throws: OpenSSLError.self) { try AES256CBC.decrypt(ciphertext, key: key, iv: Array(iv.prefix(8))) }
        var failures = 0
        for _ in 0..<8 {
            // A wrong key fails the PKCS#7 check (or, rarely, yields garbage that is not the plaintext).
            if let garbage = try? AES256CBC.decrypt(ciphertext, key: try randomBytes(32), iv: iv) {
                #expect(garbage != Data("{\"a\":{}}".utf8))
            } else {
                failures += 1
            }
        }
        #expect(failures > 0)
    }

    static func credential(_ group: String, _ name: String, _ value: String) -> [String: Any] {
        ["type": "Veil::Credential", "name": name, "group": group, "value": value, "version": 0, "length": value.count, "frozen": false]
    }

    static func v2File(_ groups: [String: [String: String]], key: [UInt8], iv: [UInt8]) throws -> Data {
        var expanded: [String: Any] = [:]
        for (group, names) in groups {
            expanded[group] = Dictionary(uniqueKeysWithValues: names.map { ($0.key, credential(group, $0.key, $0.value)) })
        }
        let plaintext = try JSONSerialization.data(withJSONObject: expanded)
        let document: [String: Any] = ["veil": [
            "type": "Veil::CredentialCollection::ChefSecretsFile", "version": 2,
            "hasher": ["type": "Veil::Hasher::PBKDF2", "secret": "abc", "salt": "def", "iterations": 10000],
            "cipher": ["type": "Veil::Cipher::V2", "key": Data(key).base64EncodedString(), "iv": Data(iv).base64EncodedString()],
            "credentials": try AES256CBC.encrypt(plaintext, key: key, iv: iv).base64EncodedString(),
        ] as [String: Any]]
        return try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted])
    }

    static let groups = [
        "chef-server": ["superuser_key": "-----BEGIN RSA PRIVATE KEY-----\n...\n", "webui_pub_key": "pub"],
        "postgresql": ["db_superuser_password": "s3cr3t-postgres-password"],
        "rabbitmq": ["password": "rabbit", "actions_password": "actions"],
    ]

    @Test("reads a v2 file, an unencrypted veil file and the legacy flat form alike")
    func threeForms() throws {
        let v2 = try VeilSecrets.parse(try Self.v2File(Self.groups, key: try randomBytes(32), iv: try randomBytes(16)))
        #expect(v2.format == .v2)
        #expect(v2.credentials == Self.groups)
        #expect(v2.count == 5)
        #expect(v2.hasher?.contains("PBKDF2") == true)
        #expect(v2.value("postgresql", "db_superuser_password") == "s3cr3t-postgres-password")

        let legacy = try VeilSecrets.parse(try JSONSerialization.data(withJSONObject: Self.groups))
        #expect(legacy.format == .legacy)
        #expect(legacy.credentials == Self.groups)

        var expanded: [String: Any] = [:]
        for (group, names) in Self.groups {
            expanded[group] = Dictionary(uniqueKeysWithValues: names.map { ($0.key, Self.credential(group, $0.key, $0.value)) })
        }
        let plain: [String: Any] = ["veil": ["type": "Veil::CredentialCollection::ChefSecretsFile", "version": 1,
                                             "credentials": expanded] as [String: Any]]
        let veilPlain = try VeilSecrets.parse(try JSONSerialization.data(withJSONObject: plain))
        #expect(veilPlain.format == .veilPlain)
        #expect(veilPlain.credentials == Self.groups)
    }

    @Test("unknown veil versions and shapes are refused, naming the field", arguments: [
        (#"{"veil":{"type":"Veil::CredentialCollection::ChefSecretsFile","version":9,"credentials":"AAAA"}}"#, "veil.version"),
        (#"{"veil":{"type":"Veil::CredentialCollection::ChefSecretsFile","version":true,"credentials":{}}}"#, "veil.version"),
        (#"{"veil":{"type":"Veil::CredentialCollection::ChefSecretsFile","version":"2","credentials":"AAAA"}}"#, "veil.version"),
        (#"{"veil":{"type":"Veil::CredentialCollection::ChefSecretsFile","version":2.5,"credentials":"AAAA"}}"#, "veil.version"),
        (#"{"veil":{"type":"Veil::CredentialCollection::ChefSecretsFile","credentials":"AAAA"}}"#, "veil.version"),
        (#"{"veil":{"type":"Veil::CredentialCollection::ChefSecretsFile","version":2,"credentials":{}}}"#, "veil.credentials"),
        (#"{"veil":{"type":"Other","version":2}}"#, "veil.type"),
    ])
    func unknownVersions(text: String, field: String) {
        do {
            _ = try VeilSecrets.parse(Data(text.utf8))
            Issue.record("accepted \(text)")
        } catch let failure as VeilSecrets.Failure {
            #expect(failure.field == field, "\(failure)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("the credentials a consumer needs: missing group, missing or empty name, wrong type")
    func requiredCredentials() throws {
        let required = FrontendValidation.requiredCredentials
        let vail = try VeilSecrets.parse(Data(#"{"vail":{"version":2}}"#.utf8))
        #expect(vail.missing(required, purpose: "p")?.contains("no chef-server group") == true)
        let partial = try VeilSecrets.parse(Data(#"{"chef-server":{"superuser_key":"k","webui_key":""}}"#.utf8))
        #expect(partial.missing(required, purpose: "p") == "chef-server.webui_key, chef-server.webui_pub_key missing or empty: p")
        let typed = try VeilSecrets.parse(Data(#"{"chef-server":{"superuser_key":1,"webui_key":"a","webui_pub_key":"b"}}"#.utf8))
        #expect(typed.missing(required, purpose: "p") == "chef-server.superuser_key: not a string")
        let backend = try VeilSecrets.parse(Data(#"{"postgresql":{"db_superuser_password":"a","replication_password":"b"},"etcd":{"initial_cluster_token":"c"},"elasticsearch":{"cluster_name":"d"}}"#.utf8))
        #expect(backend.missing(BackendSecretsBundle.requiredCredentials, purpose: "p") == nil)
    }

    @Test("the table refuses setuid, writable, other modes and foreign owners; accepts itself")
    func layoutDisagreement() {
        let layout = FrontendFlavor.cinc.layout
        let shell = "etc/cinc-project/private-chef.sh"
        #expect(layout.disagreement(path: shell, mode: 0o644, owner: "root", group: "root", isDirectory: false) == nil)
        #expect(layout.disagreement(path: shell, mode: 0o644, owner: "opscode", group: "opscode", isDirectory: false) == nil)
        #expect(layout.disagreement(path: shell, mode: 0o4755, owner: "root", group: "root", isDirectory: false)?.contains("setuid") == true)
        #expect(layout.disagreement(path: shell, mode: 0o664, owner: "root", group: "root", isDirectory: false)?.contains("write") == true)
        #expect(layout.disagreement(path: shell, mode: 0o600, owner: "root", group: "root", isDirectory: false)?.contains("0644") == true)
        #expect(layout.disagreement(path: shell, mode: 0o644, owner: "nobody", group: "root", isDirectory: false)?.contains("nobody") == true)
        #expect(layout.disagreement(path: "etc/passwd", mode: 0o644, owner: "root", group: "root", isDirectory: false)?.contains("not a file") == true)
        #expect(layout.disagreement(path: "etc/cinc-project", mode: 0o777, owner: "root", group: "root", isDirectory: true)?.contains("write") == true)
        for file in FrontendFlavor.chef.files {
            #expect(FrontendFlavor.chef.layout.disagreement(path: file.path, mode: file.mode, owner: "root", group: "root", isDirectory: false) == nil)
        }
    }

    @Test("a file that does not decrypt is named by field, never by value")
    func failures() throws {
        let key = try randomBytes(32), iv = try randomBytes(16)
        var document = try #require(try JSONSerialization.jsonObject(with: try Self.v2File(Self.groups, key: key, iv: iv)) as? [String: Any])
        var veil = try #require(document["veil"] as? [String: Any])
        veil["cipher"] = ["type": "Veil::Cipher::V2", "key": Data(try randomBytes(32)).base64EncodedString(), "iv": Data(iv).base64EncodedString()]
        document["veil"] = veil
        let data = try JSONSerialization.data(withJSONObject: document)
        do {
            let secrets = try VeilSecrets.parse(data)
            // A random key passed the padding check by chance: the plaintext is then not JSON.
            Issue.record("decrypted with a wrong key: \(secrets.count) credentials")
        } catch let failure as VeilSecrets.Failure {
            #expect(failure.field == "veil.credentials")
            #expect(!failure.description.contains("s3cr3t"))
        }
        #expect(throws: VeilSecrets.Failure.self) { try VeilSecrets.parse(Data("{\"veil\": ".utf8)) }
        #expect(throws: VeilSecrets.Failure.self) { try VeilSecrets.parse(Data("[1, 2]".utf8)) }
        #expect(throws: VeilSecrets.Failure.self) { try VeilSecrets.parse(Data("{\"postgresql\": \"flat string\"}".utf8)) }
        veil["cipher"] = ["type": "Veil::Cipher::V2", "key": Data(key.prefix(16)).base64EncodedString(), "iv": Data(iv).base64EncodedString()]
        document["veil"] = veil
        do {
            _ = try VeilSecrets.parse(try JSONSerialization.data(withJSONObject: document))
            Issue.record("a 16-byte key was accepted")
        } catch let failure as VeilSecrets.Failure {
            #expect(failure.field == "veil.cipher.key")
        }
    }

    @Test("migration-level is one {\"major\":M,\"minor\":N} object", arguments: [
        (#"{"major":1,"minor":52}"#, "1.52"), (#"{"minor":3,"major":1}"#, "1.3"), ("{ \"major\" : 1 , \"minor\" : 0 }\n", "1.0"),
        ("", nil), ("garbage", nil), (#"{"major":1}"#, nil), (#"{"major":1,"minor":"2"}"#, nil), (#"{"major":1,"minor":2.5}"#, nil),
        (#"{"major":1,"minor":2,"x":3}"#, nil), ("{\"major\":1,\"minor\":2}\n{\"major\":1,\"minor\":3}", nil),
        (#"{"major":0,"minor":0}"#, nil), (#"{"major":1,"major":2}"#, nil), (#"{"major":-1,"minor":2}"#, nil),
    ] as [(String, String?)])
    func migrationLevel(text: String, expected: String?) {
        let level = try? MigrationLevel.parse(Data(text.utf8))
        #expect(level?.description == expected)
    }
}

@Suite("CMS password envelope (PWRI)")
struct PasswordEnvelopeTests {
    static let content = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })

    @Test("round trip in PEM and DER; a wrong passphrase fails", arguments: PasswordEnvelope.Encoding.allCases)
    func roundTrip(encoding: PasswordEnvelope.Encoding) throws {
        let passphrase = try Passphrase(bytes: Array("correct horse battery".utf8), source: "test")
        let sealed = try PasswordEnvelope.seal(Self.content, passphrase: passphrase, iterations: 2048, encoding: encoding)
        #expect(PasswordEnvelope.isEnvelope(sealed))
        #expect(!PasswordEnvelope.isEnvelope(Self.content))
        #expect(String(decoding: sealed.prefix(19), as: UTF8.self) == "-----BEGIN CMS-----" || encoding == .der)
        #expect(try PasswordEnvelope.open(sealed, passphrase: passphrase) == Self.content)
        let wrong = try Passphrase(bytes: Array("incorrect horse battery".utf8), source: "test")
        do {
            let opened = try PasswordEnvelope.open(sealed, passphrase: wrong)
            #expect(opened != Self.content)
        } catch let error as OpenSSLError {
            #expect(error.isWrongPassword, "\(error)")
        }
    }

    @Test("stock openssl cms opens what chpki seals, and chpki opens what openssl seals")
    func interoperability() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-cms-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let password = "a passphrase with spaces"
        let passphrase = try Passphrase(bytes: Array(password.utf8), source: "test")
        try PasswordEnvelope.seal(Self.content, passphrase: passphrase, iterations: 10_000)
            .write(to: directory.appendingPathComponent("chpki.cms"))
        try runTool(["openssl", "cms", "-decrypt", "-binary", "-inform", "PEM", "-in", "chpki.cms", "-out", "plain.bin",
                     "-pwri_password", password], in: directory)
        #expect(try Data(contentsOf: directory.appendingPathComponent("plain.bin")) == Self.content)

        try runTool(["openssl", "cms", "-encrypt", "-binary", "-aes256", "-in", "plain.bin", "-outform", "DER", "-out", "openssl.der",
                     "-pwri_password", password], in: directory)
        let sealed = try Data(contentsOf: directory.appendingPathComponent("openssl.der"))
        #expect(try PasswordEnvelope.open(sealed, passphrase: passphrase) == Self.content)
    }

}

@Suite("frontend bundle in memory")
struct FrontendBundleTests {
    static func bundle() throws -> FrontendBundle {
        let pivotal = try PrivateKey.generate(.rsa2048)
        let webui = try PrivateKey.generate(.rsa2048)
        let groups = ["chef-server": ["superuser_key": String(decoding: try pivotal.traditionalPEM(), as: UTF8.self),
                                      "webui_key": String(decoding: try webui.traditionalPEM(), as: UTF8.self),
                                      "webui_pub_key": String(decoding: try webui.publicKeyPEM(), as: UTF8.self)],
                      "postgresql": ["db_superuser_password": "pg"]]
        let flavor = FrontendFlavor.cinc
        let contents: [FrontendFile.Role: Data] = [
            .serverConfig: Data("topology \"standalone\"\n".utf8), .darkLaunch: Data("{}".utf8),
            .pivotalConfig: Data("node_name \"pivotal\"\n".utf8), .privateChefShell: Data("export X=1\n".utf8),
            .webuiPublic: try webui.publicKeyPEM(), .webuiPrivate: try webui.traditionalPEM(), .pivotalKey: try pivotal.traditionalPEM(),
            .secrets: try VeilTests.v2File(groups, key: try randomBytes(32), iv: try randomBytes(16)),
            .migrationLevel: Data(#"{"major":1,"minor":52}"#.utf8), .bootstrapped: Data(),
        ]
        var files: [FrontendFile.Role: FrontendFileData] = [:]
        for file in flavor.files {
            files[file.role] = FrontendFileData(path: file.path, data: contents[file.role]!, mode: file.mode,
                                                owner: "root", group: "root", modified: Date(timeIntervalSince1970: 1_800_000_000))
        }
        let validation = FrontendValidation.validate(flavor: flavor, files: files, absent: []) { $0.path }
        #expect(validation.problems.isEmpty, "\(validation.problems)")
        #expect(validation.fingerprints["pivotal.pem"] == validation.fingerprints["chef-server.superuser_key"])
        return FrontendBundle(flavor: flavor, files: flavor.files.compactMap { files[$0.role] },
                              directories: flavor.directories.map { FrontendDirectory(path: $0, mode: 0o755, owner: "root", group: "root") },
                              validation: validation)
    }

    @Test("archive -> reader gives back every file, and refuses an altered member")
    func roundTrip() throws {
        let bundle = try Self.bundle()
        let archive = try bundle.archive(source: "A")
        let opened = try FrontendBundleReader.open(archive, file: "b.tgz") { Issue.record("asked for a passphrase"); throw ChpkiError(.passphraseMissing, "no") }
        #expect(opened.bundle.files == bundle.files)
        #expect(opened.manifest.migrationLevel == "1.52")
        #expect(!opened.encrypted)

        var entries = try Tar.read(try Gzip.decompress(archive))
        let index = try #require(entries.firstIndex { $0.path.hasSuffix("pivotal.rb") })
        entries[index].kind = .file(Data("node_name \"mallory\"\n".utf8))
        let altered = try Gzip.compress(try Tar.archive(entries))
        #expect(throws: ChpkiError.self) { try FrontendBundleReader.open(altered, file: "b.tgz") { throw ChpkiError(.passphraseMissing, "no") } }

        let passphrase = try Passphrase(bytes: Array("bundle passphrase".utf8), source: "test")
        let sealed = try PasswordEnvelope.seal(archive, passphrase: passphrase, iterations: 2048)
        let reopened = try FrontendBundleReader.open(sealed, file: "b.cms") { passphrase }
        #expect(reopened.encrypted)
        #expect(reopened.bundle.files == bundle.files)
    }
}

@Suite("rooted directory: nothing followed, nothing outside")
struct RootedDirectoryTests {
    static func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-rooted-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path + "/root/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path + "/outside", withIntermediateDirectories: true)
        return path
    }

    @Test("a symlinked parent, absolute or relative, is refused; a final symlink is reported, not followed")
    func symlinks() throws {
        let base = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createSymbolicLink(atPath: base + "/root/var", withDestinationPath: "../outside")
        try FileManager.default.createSymbolicLink(atPath: base + "/root/etc/link", withDestinationPath: base + "/outside")
        try FileManager.default.createSymbolicLink(atPath: base + "/root/etc/file", withDestinationPath: "../../outside/x")
        let root = try RootedDirectory(base + "/root")
        for path in ["var/opt/x", "etc/link/x"] {
            #expect(throws: RootedDirectory.Refusal.self) { _ = try root.entry(path) }
            #expect(throws: RootedDirectory.Refusal.self) { try root.writeFile(path, data: Data("x".utf8), mode: 0o600, owner: nil, group: nil) }
        }
        #expect(try root.entry("etc/file") == .special(.symlink))
        #expect(throws: RootedDirectory.Refusal.self) { _ = try root.read("etc/file", limit: 100) }
        #expect(throws: (any Error).self) { try root.writeFile("etc/file/../x", data: Data(), mode: 0o600, owner: nil, group: nil) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/outside").isEmpty)
        #expect(try root.entry("etc/missing/deeper") == .missing)
    }

    @Test("files and directories get exactly the mode asked, whatever the umask; the old file can be kept")
    func writes() throws {
        let base = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let root = try RootedDirectory(base + "/root")
        try root.makeDirectory("etc/cinc-project", mode: 0o755, owner: nil, group: nil)
        try root.writeFile("etc/cinc-project/a", data: Data("one".utf8), mode: 0o640, owner: nil, group: nil)
        guard case let .regular(status) = try root.entry("etc/cinc-project/a") else { Issue.record("not written"); return }
        #expect(status.mode == 0o640)
        guard case let .directory(directory) = try root.entry("etc/cinc-project") else { Issue.record("no directory"); return }
        #expect(directory.mode == 0o755)
        try root.writeFile("etc/cinc-project/a", data: Data("two".utf8), mode: 0o600, owner: nil, group: nil, backupName: "a.old")
        #expect(try root.read("etc/cinc-project/a", limit: 10) == Data("two".utf8))
        #expect(try root.read("etc/cinc-project/a.old", limit: 10) == Data("one".utf8))
        #expect(throws: RootedDirectory.Refusal.self) { _ = try root.read("etc/cinc-project/a", limit: 2) }
        let names = try FileManager.default.contentsOfDirectory(atPath: base + "/root/etc/cinc-project").sorted()
        #expect(names == ["a", "a.old"], "no temporary file left behind")
    }
}
