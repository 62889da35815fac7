using System.Text.Json.Nodes;
using Crsc.Api.Crds;
using Crsc.Api.Tests.Crds;

namespace Crsc.Api.Tests;

/// <summary>packaging/kubernetes/rbac.yaml: least privilege, no wildcards, every rule explained.</summary>
public sealed class RbacTests
{
    private static readonly string Text = File.ReadAllText(Path.Combine(RepoFiles.KubernetesDir, "rbac.yaml"));
    private static readonly List<JsonObject> Docs = YamlTree.LoadAll(Text).Select(d => (JsonObject)d!).ToList();

    private static JsonObject Doc(string kind, string name) =>
        Docs.Single(d => (string?)d["kind"] == kind && (string?)d["metadata"]!["name"] == name);

    private static IEnumerable<JsonObject> Rules(JsonObject role) => role["rules"]!.AsArray().Select(r => (JsonObject)r!);

    private static IEnumerable<string> Strings(JsonNode? node) => node?.AsArray().Select(n => (string)n!) ?? [];

    /// <summary>Every (group, resource, verb) the role grants, as "group/resource:verb".</summary>
    private static HashSet<string> Grants(JsonObject role) =>
        Rules(role).SelectMany(r => Strings(r["apiGroups"]).SelectMany(g => Strings(r["resources"])
            .SelectMany(res => Strings(r["verbs"]).Select(v => $"{g}/{res}:{v}")))).ToHashSet();

    [Fact]
    public void Has_the_namespace_service_account_roles_and_bindings()
    {
        Assert.Equal(
            ["Namespace/crsc-system", "ServiceAccount/crsc", "ClusterRole/crsc", "ClusterRoleBinding/crsc",
             "Role/crsc-leader-election", "RoleBinding/crsc-leader-election", "Role/crsc-key", "RoleBinding/crsc-key",
             "ValidatingAdmissionPolicy/crsc-checkpointnode-own-node", "ValidatingAdmissionPolicyBinding/crsc-checkpointnode-own-node"],
            Docs.Select(d => $"{d["kind"]}/{d["metadata"]!["name"]}"));
        foreach (var d in Docs.Where(d => (string?)d["kind"] is "ServiceAccount" or "Role" or "RoleBinding"))
            Assert.Equal("crsc-system", (string?)d["metadata"]!["namespace"]);
        foreach (var binding in new[] { Doc("ClusterRoleBinding", "crsc"), Doc("RoleBinding", "crsc-leader-election"), Doc("RoleBinding", "crsc-key") })
        {
            var subject = Assert.Single(binding["subjects"]!.AsArray())!;
            Assert.Equal(("ServiceAccount", "crsc", "crsc-system"), ((string?)subject["kind"], (string?)subject["name"], (string?)subject["namespace"]));
        }
        Assert.Equal("crsc", (string?)Doc("ClusterRoleBinding", "crsc")["roleRef"]!["name"]);
        Assert.Equal("crsc-leader-election", (string?)Doc("RoleBinding", "crsc-leader-election")["roleRef"]!["name"]);
        Assert.Equal("crsc-key", (string?)Doc("RoleBinding", "crsc-key")["roleRef"]!["name"]);
    }

    [Fact]
    public void No_wildcards_anywhere()
    {
        foreach (var role in Docs.Where(d => (string?)d["kind"] is "ClusterRole" or "Role"))
            foreach (var rule in Rules(role))
            {
                foreach (var key in new[] { "apiGroups", "resources", "verbs", "resourceNames" })
                    Assert.DoesNotContain(Strings(rule[key]), v => v.Contains('*'));
                Assert.Null(rule["nonResourceURLs"]);
                Assert.DoesNotContain(Strings(rule["verbs"]), v => v is "escalate" or "bind" or "impersonate" or "deletecollection");
            }
    }

    [Fact]
    public void ClusterRole_grants_exactly_what_the_daemon_does()
    {
        var grants = Grants(Doc("ClusterRole", "crsc"));
        var expected = new HashSet<string>();
        void Add(string group, string resources, string verbs)
        {
            foreach (var r in resources.Split(','))
                foreach (var v in verbs.Split(','))
                    expected.Add($"{group}/{r}:{v}");
        }
        Add("", "pods", "get,list,watch,patch,delete");
        Add("", "pods", "create"); // crsc migrate makes a bare pod again on the target node
        Add("", "pods/status", "patch"); // the crsc.io/RestoreFrom condition
        Add("apps", "deployments,replicasets,statefulsets", "get,list,watch");
        Add("apps", "deployments/finalizers", "update");
        // the one workload edit: the interceptor sidecar in the pod template of a Deployment that asks for it
        Add("apps", "deployments", "update");
        Add("", "nodes", "get,list,watch");
        Add("", "nodes/checkpoint", "create");
        var plurals = string.Join(',', new[] { CrscResources.CheckpointSchedules, (object)CrscResources.ContainerCheckpoints,
            CrscResources.ContainerCheckpointContents, CrscResources.Restores }.Select(r => r switch
        {
            Kubernetes.ResourceType<CheckpointSchedule> s => s.Plural,
            Kubernetes.ResourceType<ContainerCheckpoint> c => c.Plural,
            Kubernetes.ResourceType<ContainerCheckpointContent> c => c.Plural,
            Kubernetes.ResourceType<Restore> c => c.Plural,
            _ => throw new InvalidOperationException(),
        }));
        Add("crsc.io", plurals, "get,list,watch,create,update,patch,delete");
        Add("crsc.io", string.Join(',', plurals.Split(',').Select(p => p + "/status")), "get,update,patch");
        // its own node's CheckpointNode (the admission policy holds it to that name); never deleted by an agent
        Add("crsc.io", CrscResources.CheckpointNodes.Plural, "get,list,watch,create,update,patch");
        Add("crsc.io", CrscResources.CheckpointNodes.Plural + "/status", "get,update,patch");
        Add("crsc.io", string.Join(',', plurals.Split(',').Select(p => p + "/finalizers")), "update");
        Add("", "events", "create,patch");
        Add("events.k8s.io", "events", "create,patch");
        Add("", "secrets,configmaps", "get");
        Assert.Equal(expected.Order(), grants.Order());
        // Notably absent: reading all secrets, editing workloads but by a PUT of Deployments, leases cluster-wide.
        Assert.DoesNotContain("/secrets:list", grants);
        Assert.DoesNotContain("apps/deployments:patch", grants);
        Assert.DoesNotContain("apps/statefulsets:update", grants);
        Assert.DoesNotContain(grants, g => g.StartsWith("coordination.k8s.io/", StringComparison.Ordinal));
    }

    [Fact]
    public void Leases_only_in_crscs_namespace_read_and_renewed_never_listed_or_deleted()
    {
        var role = Doc("Role", "crsc-leader-election");
        Assert.Equal("crsc-system", (string?)role["metadata"]!["namespace"]);
        Assert.Equal(["coordination.k8s.io/leases:create", "coordination.k8s.io/leases:get", "coordination.k8s.io/leases:update"], Grants(role).Order());
        // the leader's Lease and one presence Lease per node (crsc-node-<node>): names resourceNames cannot know in advance
        Assert.All(Rules(role), r => Assert.Null(r["resourceNames"]));
        Assert.Contains("crsc-leader", Text);
        Assert.Contains("crsc-node-<node>", Text);
    }

    [Fact]
    public void The_shared_key_secret_is_read_by_name_and_created_only_in_crscs_namespace()
    {
        var role = Doc("Role", "crsc-key");
        Assert.Equal("crsc-system", (string?)role["metadata"]!["namespace"]);
        Assert.Equal(["/secrets:create", "/secrets:get"], Grants(role).Order());
        // get names the one Secret; create cannot be limited by name, only by the Role's namespace
        var get = Assert.Single(Rules(role), r => Strings(r["verbs"]).Contains("get"));
        Assert.Equal(["crsc-key"], Strings(get["resourceNames"]));
        Assert.Equal(["create"], Strings(Assert.Single(Rules(role), r => r["resourceNames"] is null)["verbs"]));
    }

    [Fact]
    public void Every_rule_is_explained_by_a_comment()
    {
        // The rule list items start with "- apiGroups:"; the line before each must be a comment.
        var lines = Text.Split('\n');
        var ruleLines = Enumerable.Range(0, lines.Length).Where(i => lines[i].TrimStart().StartsWith("- apiGroups:", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(ruleLines);
        var uncommented = ruleLines.Where(i => !lines[i - 1].TrimStart().StartsWith('#')).Select(i => $"line {i + 1}").ToList();
        Assert.True(uncommented.Count == 0, "rules without a comment: " + string.Join(", ", uncommented));
    }

    [Fact]
    public void A_node_agent_may_write_only_the_CheckpointNode_of_its_own_node()
    {
        var policy = Doc("ValidatingAdmissionPolicy", "crsc-checkpointnode-own-node");
        var spec = policy["spec"]!;
        Assert.Equal("Fail", (string?)spec["failurePolicy"]);
        var rule = Assert.Single(spec["matchConstraints"]!["resourceRules"]!.AsArray())!;
        Assert.Equal(["crsc.io"], Strings(rule["apiGroups"]));
        Assert.Equal(["CREATE", "UPDATE", "DELETE"], Strings(rule["operations"]));
        // the status subresource too: an agent writes its object's status, and that is where the capability is
        Assert.Equal([CrscResources.CheckpointNodes.Plural, CrscResources.CheckpointNodes.Plural + "/status"], Strings(rule["resources"]));
        // held to it: the ServiceAccount the bindings above grant the ClusterRole to, and nobody else
        var match = (string)Assert.Single(spec["matchConditions"]!.AsArray())!["expression"]!;
        Assert.Equal("request.userInfo.username == 'system:serviceaccount:crsc-system:crsc'", match);
        // the node a pod-bound token was issued on (k8s.io/apiserver serviceaccount.NodeNameKey) names the one object;
        // a request without it is refused (the && fails), not waved through
        var check = (string)Assert.Single(spec["validations"]!.AsArray())!["expression"]!;
        Assert.Equal("'authentication.kubernetes.io/node-name' in request.userInfo.extra && "
            + "request.userInfo.extra['authentication.kubernetes.io/node-name'].exists(n, n == request.name)", check.Trim());
        var binding = Doc("ValidatingAdmissionPolicyBinding", "crsc-checkpointnode-own-node");
        Assert.Equal("crsc-checkpointnode-own-node", (string?)binding["spec"]!["policyName"]);
        Assert.Equal(["Deny"], Strings(binding["spec"]!["validationActions"]));
    }
}
