import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Reads back the `DNS:x` / `IP:y` text form (`GeneralName.description`) the database stores SANs in.
enum GeneralNameText {
    package static func parse(_ text: String) -> GeneralName? {
        if text.hasPrefix("DNS:") { return .dns(String(text.dropFirst(4))) }
        if text.hasPrefix("IP:"), let address = IPAddress(String(text.dropFirst(3))) { return .ip(address.bytes) }
        if text.hasPrefix("email:") { return .email(String(text.dropFirst(6))) }
        if text.hasPrefix("URI:") { return .uri(String(text.dropFirst(4))) }
        return .other(text)
    }
}
