import ChpkiBase

/// Octal mode text, as `ls`/`stat -c %a` users read it: `0600`.
package enum ModeText {
    package static func format(_ mode: UInt16) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    package static func parse(_ text: String) -> UInt16? {
        guard (3...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }),
              let value = UInt16(text, radix: 8), value <= 0o7777 else { return nil }
        return value
    }
}
