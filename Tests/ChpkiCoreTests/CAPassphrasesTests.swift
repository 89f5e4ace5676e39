import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// The CA's two secrets for one session (CAPassphrases, SPEC §6): each read at most once from its
/// source, the root's answered by the operations passphrase on a one-passphrase CA, a missing root
/// passphrase refused with its code and the ways to give it (never a prompt without a terminal),
/// and which secret opens which kind of CA key.
@Suite("CA passphrases")
struct CAPassphrasesTests {
    static func text(_ passphrase: Passphrase) -> String { String(decoding: passphrase.bytes, as: UTF8.self) }

    /// A source file whose content the test can change after the first read.
    static func file(_ text: String) throws -> String {
        try CATestSupport.file(text + "\n", named: "passphrase-\(UUID().uuidString)", in: try CATestSupport.temporaryDirectory("pp"))
    }

    static func passphrases(operations: String?, root: String?, apart: Bool, asked: Flag = Flag()) throws -> CAPassphrases {
        CAPassphrases(operations: PassphraseSource(file: try operations.map(file), environment: [:]),
                      root: .root(file: try root.map(file), environment: [:]),
                      rootKeyApart: { asked.set(); return apart })
    }

    @Test("each secret is read once per session: a file changed after the first read is not read again")
    func readOnce() throws {
        let path = try Self.file("operations one")
        let passphrases = CAPassphrases(operations: PassphraseSource(file: path, environment: [:]), root: nil, rootKeyApart: { false })
        #expect(Self.text(try passphrases.operationsPassphrase()) == "operations one")
        try "operations two\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(Self.text(try passphrases.operationsPassphrase()) == "operations one")
    }

    @Test("a one-passphrase CA opens its root with the operations passphrase, whatever the root source says")
    func oneSecret() throws {
        let passphrases = try Self.passphrases(operations: "operations", root: "never read", apart: false)
        #expect(Self.text(try passphrases.rootPassphrase(purpose: "t")) == "operations")
        for kind in [CertificateKind.root, .intermediate] {
            #expect(Self.text(try passphrases.passphrase(for: kind, purpose: "t")) == "operations", "\(kind)")
            #expect(try passphrases.field(for: kind) == passphrases.operationsField, "\(kind)")
        }
    }

    @Test("two secrets: the root's opens the root, the operations one the intermediate, each from its own source")
    func twoSecrets() throws {
        let passphrases = try Self.passphrases(operations: "operations", root: "root secret", apart: true)
        #expect(Self.text(try passphrases.passphrase(for: .root, purpose: "t")) == "root secret")
        #expect(Self.text(try passphrases.passphrase(for: .intermediate, purpose: "t")) == "operations")
        #expect(try passphrases.field(for: .root) != passphrases.operationsField)
        #expect(try passphrases.field(for: .root).contains(PassphraseSource.rootFileOption))
    }

    @Test("a root passphrase not given is refused with its code, the purpose and the ways to give it, without a prompt")
    func rootMissing() throws {
        guard !Terminal.standardInputIsATerminal else { return }  // a terminal would prompt instead
        let passphrases = try Self.passphrases(operations: "operations", root: nil, apart: true)
        let error = try #require(CATestSupport.refusal { _ = try passphrases.rootPassphrase(purpose: "rotate-ca") })
        #expect(error.code == .passphraseRootNeeded)
        #expect(error.message.contains("rotate-ca") && error.message.contains(CADirectory.rootKey))
        #expect(error.message.contains(PassphraseSource.rootFileOption) && error.message.contains(PassphraseSource.rootEnvironmentVariable))
        // the operations passphrase still opens what it opens
        #expect(Self.text(try passphrases.passphrase(for: .intermediate, purpose: "t")) == "operations")
    }

    @Test("messages name where each secret comes from: the file option, else the environment variable")
    func fields() throws {
        let given = try Self.passphrases(operations: "operations", root: "root secret", apart: true)
        #expect(given.operationsField.contains(PassphraseSource.fileOption))
        #expect(try given.field(for: .root).contains(PassphraseSource.rootFileOption))
        let environment = CAPassphrases(operations: PassphraseSource(file: nil, environment: [PassphraseSource.environmentVariable: "x"]),
                                        root: .root(file: nil, environment: [:]), rootKeyApart: { true })
        #expect(environment.operationsField.contains(PassphraseSource.environmentVariable))
        #expect(Self.text(try environment.operationsPassphrase()) == "x")
    }

    @Test("whether the root is apart is read only when a root-or-kind question needs it")
    func apartReadLazily() throws {
        let asked = Flag()
        let passphrases = try Self.passphrases(operations: "operations", root: "root secret", apart: true, asked: asked)
        _ = try passphrases.operationsPassphrase()
        #expect(asked.times == 0)
        _ = try passphrases.rootPassphrase(purpose: "t")
        #expect(asked.times == 1)
    }
}
