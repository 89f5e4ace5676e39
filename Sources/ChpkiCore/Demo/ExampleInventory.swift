/// The built-in example of `chpki demo`: the cluster of reference 000. A unit test keeps it
/// identical to `examples/reference-000.yml`.
public enum ExampleInventory {
    public static let fileName = "reference-000.yml"
    public static let reference000 = """
# The cluster of reference 000, "Cinc as highly available cluster": 2 frontends, 4 backends
# (OpenSearch, PostgreSQL with etcd and Patroni, MinIO) and 2 haproxy/keepalived balancers.
# Documentation addresses (10.0.0.x) only.
domain: example.com
subject:                            # the DN the article uses for nodes_dn / admin_dn
  OU: MyOrganizationalUnit
  O: MyCompany
  L: MyCity
  ST: MyState
  C: US
ca:
  common_name: Cinc Root CA
  key: ec-p384
  validity: 10y
defaults:
  key: ec-p256
  validity: 397d
  renew_before: 30d
hosts:
  - name: backend-1.example.com
    ips: [10.0.0.1]
    groups: [backend]
  - name: backend-2.example.com
    ips: [10.0.0.2]
    groups: [backend]
  - name: backend-3.example.com
    ips: [10.0.0.3]
    groups: [backend]
  - name: backend-4.example.com
    ips: [10.0.0.4]
    groups: [backend]
  - name: frontend-1.example.com
    ips: [10.0.0.11]
    groups: [frontend]
  - name: frontend-2.example.com
    ips: [10.0.0.12]
    groups: [frontend]
  - name: haproxy-1.example.com
    ips: [10.0.0.21]
    groups: [balancer]
  - name: haproxy-2.example.com
    ips: [10.0.0.22]
    groups: [balancer]
vips:                               # names haproxy terminates TLS for (bind ... ssl crt /etc/ssl/haproxy)
  - name: cinc-opensearch-cluster   # frontend cinc-opensearch-cluster, bind 10.0.0.100:9200
    ips: [10.0.0.100]
  - name: cinc-minio-cluster        # frontend cinc-minio-cluster, bind 10.0.0.100:443
    ips: [10.0.0.100]
  - name: cinc-server-cluster       # frontend cinc-server-cluster, bind 10.0.0.101:443
    ips: [10.0.0.101]
# cinc-postgresql-cluster (10.0.0.100:5432) is keepalived L4 balancing: TLS ends on the backends,
# so it is an extra_san of patroni rather than a haproxy VIP.
services:
  opensearch:
    hosts: backend
    key: rsa-2048                   # the security plugin wants PKCS#8 RSA/EC, never Ed25519
    server_cert_mode: both          # transport layer: nodes are both servers and clients
    enable_client: false
    extra_san: [cinc-opensearch-cluster]
  patroni: { hosts: backend, extra_san: [cinc-postgresql-cluster] }
  etcd:    { hosts: backend, server_cert_mode: both }
  minio:   { hosts: backend, extra_san: [cinc-minio-cluster] }
  nginx:   { hosts: frontend, extra_san: [cinc-server-cluster] }
  haproxy: { hosts: balancer }      # one server cert per VIP on every balancer
admin:
  name: admin

"""
}
