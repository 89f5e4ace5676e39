import Foundation
import ChpkiBase

/// An X.501 distinguished name as chpki models it: a sequence of single-valued RDNs in
/// *encoding* order (C first, CN last for the usual `/C=US/O=.../CN=host` shape).
public struct DistinguishedName: Sendable, Equatable, Hashable, CustomStringConvertible {
    public struct Attribute: Sendable, Equatable, Hashable {
        /// Short name as OpenSSL knows it: CN, OU, O, L, ST, C, DC, emailAddress, serialNumber, UID.
        public var type: String
        public var value: String

        public init(_ type: String, _ value: String) {
            self.type = type
            self.value = value
        }
    }

    public var attributes: [Attribute]

    public init(_ attributes: [Attribute]) {
        self.attributes = attributes
    }

    /// Attribute names accepted in `--subject`, mapped case-insensitively to OpenSSL's short names.
    package static let knownTypes: [String: String] = [
        "cn": "CN", "ou": "OU", "o": "O", "l": "L", "st": "ST", "c": "C", "dc": "DC",
        "emailaddress": "emailAddress", "serialnumber": "serialNumber", "uid": "UID", "street": "street",
    ]

    public var commonName: String? { attributes.last(where: { $0.type == "CN" })?.value }

    /// RFC 4514 string, most specific RDN first: `CN=host,O=Acme\, Inc.,C=US`.
    public var rfc4514: String {
        attributes.reversed().map { "\($0.type)=\(Self.escape($0.value))" }.joined(separator: ",")
    }

    public var description: String { rfc4514 }

    /// RFC 4514 §2.4 escaping: `,+"\<>;` anywhere, `#` or space at the start, space at the end.
    public static func escape(_ value: String) -> String {
        // Most values (host names, the inventory's O and OU) need nothing: one pass over the bytes
        // instead of the grapheme walk below, which costs more than the rest of a leaf's database row.
        if !needsEscaping(value) { return value }
        var out = ""
        let characters = Array(value)
        for (index, character) in characters.enumerated() {
            switch character {
            case ",", "+", "\"", "\\", "<", ">", ";", "=":
                out.append("\\")
                out.append(character)
            case "#" where index == 0:
                out.append("\\#")
            case " " where index == 0 || index == characters.count - 1:
                out.append("\\ ")
            case "\u{0}":
                out.append("\\00")
            default:
                out.append(character)
            }
        }
        return out
    }

    private static func needsEscaping(_ value: String) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first, let last = bytes.last else { return false }
        if first == UInt8(ascii: "#") || first == UInt8(ascii: " ") || last == UInt8(ascii: " ") { return true }
        return bytes.contains { byte in
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "+"), UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "<"),
                 UInt8(ascii: ">"), UInt8(ascii: ";"), UInt8(ascii: "="), 0: return true
            default: return false
            }
        }
    }

    /// Parses `--subject`: RFC 4514 (`CN=Root,O=Acme\, Inc.,C=US`, most specific first) or OpenSSL's
    /// `-subj` form (`/C=US/O=Acme/CN=Root`, encoding order). `field` names the option in errors.
    public init(parsing text: String, field: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "the subject is empty") }
        let pieces: [String]
        let reverse: Bool
        if trimmed.hasPrefix("/") {
            pieces = try Self.split(String(trimmed.dropFirst()), on: "/", field: field)
            reverse = false
        } else {
            pieces = try Self.split(trimmed, on: ",", field: field)
            reverse = true
        }
        var attributes: [Attribute] = []
        for piece in pieces {
            guard let equals = Self.firstUnescaped("=", in: piece) else {
                throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "'\(piece)' is not TYPE=value")
            }
            let rawType = String(piece[..<equals]).trimmingCharacters(in: .whitespaces)
            let rawValue = String(piece[piece.index(after: equals)...])
            guard let type = Self.knownTypes[rawType.lowercased()] else {
                throw ChpkiError.input(.subjectInvalid, file: nil, field: field,
                    "unknown attribute '\(rawType)' (use CN, OU, O, L, ST, C, DC, emailAddress)")
            }
            if Self.firstUnescaped("+", in: rawValue) != nil {
                throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "multi-valued RDNs ('+') are not supported; escape it as \\+")
            }
            let value = try Self.unescape(rawValue.trimmingCharacters(in: .whitespaces), field: field)
            guard !value.isEmpty else { throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "\(type) has an empty value") }
            try Self.validate(type: type, value: value, field: field)
            attributes.append(Attribute(type, value))
        }
        if reverse { attributes.reverse() }
        guard attributes.contains(where: { $0.type == "CN" }) else {
            throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "the subject needs a CN")
        }
        self.init(attributes)
    }

    /// `DNAttributeValue`'s rule, the same one the inventory's subject follows.
    package static func validate(type: String, value: String, field: String) throws {
        if let reason = DNAttributeValue.problem(type: type, value: value) {
            throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "\(type) \(reason)")
        }
    }

    private static func firstUnescaped(_ separator: Character, in text: String) -> String.Index? {
        var escaped = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == separator { return index }
            index = text.index(after: index)
        }
        return nil
    }

    private static func split(_ text: String, on separator: Character, field: String) throws -> [String] {
        var pieces: [String] = []
        var current = ""
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                current.append(character)
                escaped = true
            } else if character == separator {
                pieces.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if escaped { throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "the subject ends with a lone backslash") }
        pieces.append(current)
        for piece in pieces where piece.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "empty RDN in '\(text)' (doubled or trailing '\(separator)')")
        }
        return pieces
    }

    private static func unescape(_ text: String, field: String) throws -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "\\"), index + 1 < utf8.count {
                let next = utf8[index + 1]
                if index + 2 < utf8.count, let high = hexValue(next), let low = hexValue(utf8[index + 2]) {
                    bytes.append(high << 4 | low)
                    index += 3
                } else {
                    bytes.append(next)
                    index += 2
                }
            } else {
                bytes.append(byte)
                index += 1
            }
        }
        guard let value = String(validating: bytes, as: UTF8.self) else {
            throw ChpkiError.input(.subjectInvalid, file: nil, field: field, "an escaped value is not valid UTF-8")
        }
        return value
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
