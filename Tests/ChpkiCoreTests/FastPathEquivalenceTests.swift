import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiModel
@testable import ChpkiOpenSSL

/// Issuance's fast paths (issue 19) must say exactly what the plain code they replaced said: each
/// is held against that code, kept here as the reference, on the inputs an operator or an attacker
/// could give it, and the PEM against OpenSSL's own writer.
@Suite("Fast paths say what the plain code said")
struct FastPathEquivalenceTests {
    typealias S = CATestSupport

    /// `SerialNumber(hex:)` before it read bytes.
    static func referenceSerial(_ hex: String) -> [UInt8]? {
        var digits = hex.lowercased().replacingOccurrences(of: ":", with: "")
        if digits.hasPrefix("0x") { digits.removeFirst(2) }
        guard !digits.isEmpty, digits.count <= 42, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return nil }
        if digits.count % 2 == 1 { digits = "0" + digits }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            bytes.append(UInt8(digits[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// `DistinguishedName.escape` without its fast path.
    static func referenceEscape(_ value: String) -> String {
        var out = ""
        let characters = Array(value)
        for (index, character) in characters.enumerated() {
            switch character {
            case ",", "+", "\"", "\\", "<", ">", ";", "=": out.append("\\"); out.append(character)
            case "#" where index == 0: out.append("\\#")
            case " " where index == 0 || index == characters.count - 1: out.append("\\ ")
            case "\u{0}": out.append("\\00")
            default: out.append(character)
            }
        }
        return out
    }

    /// `OpenSSLIndex.asn1Time` through Foundation's calendar.
    static func referenceASN1Time(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second],
                                            from: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
        func two(_ value: Int?) -> String { let value = value ?? 0; return value < 10 ? "0\(value)" : "\(value)" }
        let year = parts.year ?? 1970
        return (year < 2050 ? two(year % 100) : String(year)) + two(parts.month) + two(parts.day) + two(parts.hour)
            + two(parts.minute) + two(parts.second) + "Z"
    }

    static func randomString(from alphabet: [Character], maxLength: Int, using generator: inout some RandomNumberGenerator) -> String {
        String((0..<Int.random(in: 0...maxLength, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }

    @Test("serials: every separator, prefix, case, length and stray character reads as before")
    func serials() {
        var cases = ["", "0", "00", "0a", "0A", "0x", "0X", "0x0", "0X0a", "0x0x12", "x12", ":", "0a:BC", "0a:bc:", ":0a",
                     "٣", "１２", "0a\u{301}", "0xg", String(repeating: "f", count: 42), String(repeating: "f", count: 43),
                     "0x" + String(repeating: "1", count: 42), String(repeating: "1:", count: 42), "Ⅻ", "0\u{0}1"]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEFxX: g\u{0}é")
        for _ in 0..<3000 { cases.append(Self.randomString(from: alphabet, maxLength: 50, using: &generator)) }
        for text in cases {
            #expect(SerialNumber(hex: text)?.bytes == Self.referenceSerial(text).map { SerialNumber(bytes: $0).bytes }, "\(text.debugDescription)")
        }
    }

    @Test("RFC 4514 escaping: the fast path returns the value only where nothing needed escaping")
    func escaping() {
        var cases = ["", " ", "  ", "#", "#a", "a#", " a", "a ", "a b", "a,b", "a+b", "a\"b", "a\\b", "a<b>c", "a;b", "a=b",
                     "a\u{0}b", "é", "e\u{301}", " \u{301}", ",\u{301}", "host-00001.bench.example.com", "MyOrganizationalUnit"]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab #,+\"\\<>;=\u{0}\u{301}é")
        for _ in 0..<3000 { cases.append(Self.randomString(from: alphabet, maxLength: 8, using: &generator)) }
        for value in cases {
            #expect(DistinguishedName.escape(value) == Self.referenceEscape(value), "\(value.debugDescription)")
        }
    }

    @Test("index.txt times: UTCTime until 2049, GeneralizedTime from 2050, as Foundation's calendar said")
    func asn1Times() {
        var dates = [0, 951_782_400, 2_524_607_999, 2_524_608_000, 4_102_444_800, 1_767_225_599.999, 253_402_300_799]
            .map { Date(timeIntervalSince1970: $0) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 { dates.append(Date(timeIntervalSince1970: Double.random(in: 0..<4_200_000_000, using: &generator))) }
        for date in dates {
            #expect(OpenSSLIndex.asn1Time(date) == Self.referenceASN1Time(date), "\(date.timeIntervalSince1970)")
        }
    }

    @Test("certificate PEM: byte for byte what openssl x509 writes, for one line and for many")
    func certificatePEM() throws {
        let inventory = try S.inventory()
        let directory = try S.newCA(constraints: NameConstraintsPolicy.constraints(for: inventory))
        let issued = try S.issue(directory, inventory)
        let work = try S.temporaryDirectory("pem")
        let certificates = try S.withSession(directory, .read) { session throws in
            try [session.root, session.issuingCertificate] + issued.map { try Certificate(pem: Data($0.signed.pem.utf8)) }
        }
        for (index, certificate) in certificates.enumerated() {
            let pem = try certificate.pemText()
            let path = work + "/\(index).pem"
            try S.write(pem, to: path)
            let rewritten = try S.tool(["openssl", "x509", "-in", path, "-outform", "PEM"])
            #expect(rewritten.status == 0)
            #expect(rewritten.output == pem, "certificate \(index)")
        }
    }
}
