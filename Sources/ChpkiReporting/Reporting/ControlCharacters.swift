/// Text chpki prints comes partly from files and argv it did not write (host names, subjects,
/// paths): a newline there would split one error into several lines, an ESC sequence would
/// retitle or clear the operator's terminal. The Reporter passes every message through
/// `escaped`, so no call site has to remember.
public enum ControlCharacters {
    /// `text` with every C0 control, DEL and C1 control shown as a visible escape (`\n`, `\r`,
    /// `\t`, `\x1b`, `\x7f`, `\x9b`), except the ones in `kept` (a multi-line report keeps its
    /// newlines and tabs).
    public static func escaped(_ text: String, keeping kept: Set<Unicode.Scalar> = []) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) && !kept.contains($0) }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard isControl(scalar), !kept.contains(scalar) else {
                out.append(scalar)
                continue
            }
            out.append(contentsOf: visible(scalar).unicodeScalars)
        }
        return String(out)
    }

    /// The layout characters a multi-line report (a table, a template) may keep.
    public static let layout: Set<Unicode.Scalar> = ["\n", "\t"]

    package static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    package static func visible(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            let hex = String(scalar.value, radix: 16)
            return "\\x" + (hex.count < 2 ? "0" + hex : hex)
        }
    }
}
