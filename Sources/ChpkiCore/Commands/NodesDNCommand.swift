/// `chpki nodes-dn`: the nodes_dn and admin_dn lists for opensearch.yml, computed from the inventory.
public enum NodesDNCommand {
    public static func run(service: String, settings: Settings, reporter: Reporter) throws {
        let lists = try NodesDN(inventory: try settings.requireInventory(), service: service)
        try reporter.emit(lists)
        reporter.block(lists.yaml)
    }
}
