/// The rule for one DN attribute value, shared by the inventory's `subject`, `ca.common_name` and
/// `admin.name` and by `init-ca --subject`, so a subject accepted in one place is accepted everywhere.
public enum DNAttributeValue {
    /// X.520's upper bound for the name attributes chpki writes; emailAddress allows 255.
    public static func maxLength(of type: String) -> Int { type == "emailAddress" ? 255 : 64 }

    /// Why `value` cannot be the value of attribute `type` (CN, OU, O, L, ST, C, ...), or nil.
    /// `,`, `+`, `"`, a leading `#` and non-ASCII characters are fine: they are escaped where DNs are written.
    public static func problem(type: String, value: String) -> String? {
        if type == "C" {
            guard value.unicodeScalars.count == 2, value.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) }) else {
                return "'\(value)' is not a country code: expected two letters (ISO 3166), e.g. US"
            }
            return nil
        }
        if value.trimmingCharacters(in: .whitespaces).isEmpty { return "must not be empty" }
        let length = value.unicodeScalars.count, limit = maxLength(of: type)
        if length > limit { return "is \(length) characters long; at most \(limit) are allowed (X.520)" }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "must not contain control characters (tab, newline, ...)"
        }
        // OpenSSL keeps such a space, Java's LdapName drops it: nodes_dn would never match.
        if value.first?.isWhitespace == true || value.last?.isWhitespace == true {
            return "must not begin or end with a space (OpenSearch would not match the DN)"
        }
        return nil
    }
}
