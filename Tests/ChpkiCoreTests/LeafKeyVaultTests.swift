import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// LeafKeyVault, which seals every leaf key in ca.db: a sealed key opens only with its own serial
/// (a box moved to another row does not open), only under the right passphrase, and a tampered box
/// is refused; each seal is fresh (the same key sealed twice gives two boxes).
@Suite("Leaf key vault")
struct LeafKeyVaultTests {
    static let passphrase = CATestSupport.passphrase("vault passphrase for unit tests")
    static let key = SecretBytes(Array("-----BEGIN PRIVATE KEY-----\nleaf key bytes\n-----END PRIVATE KEY-----\n".utf8))

    @Test("a sealed key opens with its serial and gives back the same bytes")
    func roundTrip() throws {
        let (vault, _) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let serial = try SerialNumber.random()
        let box = try vault.seal(Self.key, serial: serial)
        #expect(try vault.open(box, serial: serial) == Self.key)
        #expect(!box.contains(Data("leaf key bytes".utf8)), "the box holds the key in clear")
    }

    @Test("a box opened under another serial is refused (moving it to another row does not work)")
    func boundToSerial() throws {
        let (vault, _) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let box = try vault.seal(Self.key, serial: try SerialNumber.random())
        #expect(throws: (any Error).self) { _ = try vault.open(box, serial: try SerialNumber.random()) }
    }

    @Test("every byte of a box is protected: flipping any one is refused")
    func tamper() throws {
        let (vault, _) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let serial = try SerialNumber.random()
        let box = try vault.seal(Self.key, serial: serial)
        for index in stride(from: 0, to: box.count, by: max(1, box.count / 16)) {
            var bad = box
            bad[bad.startIndex + index] ^= 0x01
            #expect(throws: (any Error).self, "byte \(index)") { _ = try vault.open(bad, serial: serial) }
        }
        #expect(throws: (any Error).self) { _ = try vault.open(box.prefix(box.count - 1), serial: serial) }
        #expect(throws: (any Error).self) { _ = try vault.open(Data(), serial: serial) }
    }

    @Test("sealing the same key twice gives two different boxes (a fresh nonce each time)")
    func freshSeal() throws {
        let (vault, _) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let serial = try SerialNumber.random()
        #expect(try vault.seal(Self.key, serial: serial) != vault.seal(Self.key, serial: serial))
    }

    @Test("the wrap opens with the passphrase only, and the reopened vault opens earlier boxes")
    func wrap() throws {
        let (vault, wrap) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let serial = try SerialNumber.random()
        let box = try vault.seal(Self.key, serial: serial)
        let reopened = try LeafKeyVault.open(wrap, passphrase: Self.passphrase, source: "test")
        #expect(try reopened.open(box, serial: serial) == Self.key)
        let error = CATestSupport.refusal { _ = try LeafKeyVault.open(wrap, passphrase: CATestSupport.passphrase("wrong"), source: "the source") }
        #expect(error?.kind == .refused)
    }

    @Test("two vaults never open each other's boxes")
    func separateVaults() throws {
        let (first, _) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let (second, _) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let serial = try SerialNumber.random()
        #expect(throws: (any Error).self) { _ = try second.open(try first.seal(Self.key, serial: serial), serial: serial) }
    }

    @Test("a wrap's salt differs between vaults, and the wrapped key is not the data key in clear")
    func wrapShape() throws {
        let (_, a) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let (_, b) = try LeafKeyVault.create(passphrase: Self.passphrase)
        #expect(a.salt != b.salt)
        #expect(a.wrappedKey != b.wrappedKey)
        #expect(a.version == b.version)
    }
}
