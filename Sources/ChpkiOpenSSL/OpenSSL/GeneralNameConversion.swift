import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// Moves GeneralName values in and out of OpenSSL's GENERAL_NAME, typed, with no string parsing,
/// so a name from the inventory can never be read as extension syntax.
extension GeneralName {
    /// A new GENERAL_NAME the caller owns.
    func makeOpenSSL() throws -> UnsafeMutablePointer<GENERAL_NAME> {
        let name = try checkNotNil(GENERAL_NAME_new(), "GENERAL_NAME_new")
        let (type, bytes): (Int32, [UInt8]) = switch self {
        case let .dns(text): (GEN_DNS, Array(text.utf8))
        case let .ip(address): (GEN_IPADD, address)
        case let .ipNetwork(address, mask): (GEN_IPADD, address + mask)
        case let .email(text): (GEN_EMAIL, Array(text.utf8))
        case let .uri(text): (GEN_URI, Array(text.utf8))
        case let .other(text):
            GENERAL_NAME_free(name)
            throw OpenSSLError(operation: "cannot encode general name '\(text)'", reasons: [])
        }
        let stringType = type == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING
        guard let string = ASN1_STRING_type_new(stringType) else {
            GENERAL_NAME_free(name)
            throw OpenSSLError.drain("ASN1_STRING_type_new")
        }
        guard ASN1_STRING_set(string, bytes, Int32(bytes.count)) == 1 else {
            ASN1_STRING_free(string)
            GENERAL_NAME_free(name)
            throw OpenSSLError.drain("ASN1_STRING_set")
        }
        GENERAL_NAME_set0_value(name, type, UnsafeMutableRawPointer(string))
        return name
    }

    /// Reads a GENERAL_NAME; `inConstraint` says an 8/32-octet IP is address+mask.
    init(openSSL name: UnsafePointer<GENERAL_NAME>, inConstraint: Bool = false) {
        var type: Int32 = 0
        let value = GENERAL_NAME_get0_value(name, &type)
        let string = value?.assumingMemoryBound(to: ASN1_STRING.self)
        switch type {
        case GEN_DNS: self = .dns(asn1StringText(string))
        case GEN_EMAIL: self = .email(asn1StringText(string))
        case GEN_URI: self = .uri(asn1StringText(string))
        case GEN_IPADD:
            let bytes = asn1StringBytes(string)
            if inConstraint, bytes.count == 8 || bytes.count == 32 {
                self = .ipNetwork(address: Array(bytes[..<(bytes.count / 2)]), mask: Array(bytes[(bytes.count / 2)...]))
            } else {
                self = .ip(bytes)
            }
        default:
            let text = (try? MemoryBIO.writingString { bio in
                _ = GENERAL_NAME_print(bio, UnsafeMutablePointer(mutating: name))
            }) ?? "unknown"
            self = .other(text)
        }
    }
}

/// A GENERAL_NAMES stack built from Swift values; freed by the caller with `chpki_general_names_free`.
func makeGeneralNames(_ names: [GeneralName]) throws -> OpaquePointer {
    let stack = try checkNotNil(chpki_general_names_new(), "sk_GENERAL_NAME_new")
    for name in names {
        let entry: UnsafeMutablePointer<GENERAL_NAME>
        do { entry = try name.makeOpenSSL() } catch {
            chpki_general_names_free(stack)
            throw error
        }
        guard chpki_general_names_push(stack, entry) > 0 else {
            GENERAL_NAME_free(entry)
            chpki_general_names_free(stack)
            throw OpenSSLError.drain("sk_GENERAL_NAME_push")
        }
    }
    return stack
}
