using System.Text.Json.Nodes;

namespace Crsc.Testing.Kube;

/// <summary>
/// The part of kube-apiserver's pod update validation the fakes enforce, in kube-apiserver's words: scheduling gates
/// can only be removed after creation ("only deletion is allowed, but found new scheduling gate"), and a pod's node
/// selector and node affinity may change only while the pod is still gated, and then only by narrowing (additions to
/// <c>nodeSelector</c>, requirements added to the existing required node selector terms, or terms set where there were
/// none; the preferred terms are free). Other spec fields are not checked here (tests update pods in ways the kubelet
/// and scheduler would through other routes).
/// </summary>
public static class PodUpdateRules
{
    /// <summary>Null when <paramref name="next"/> is a valid update of <paramref name="old"/>, else kube-apiserver's message.</summary>
    public static string? Check(string name, JsonObject old, JsonObject next)
    {
        var oldSpec = old["spec"] as JsonObject;
        var newSpec = next["spec"] as JsonObject;
        var oldGates = GateNames(oldSpec);
        var newGates = GateNames(newSpec);
        for (var i = 0; i < newGates.Count; i++)
        {
            if (!oldGates.Contains(newGates[i]))
                return $"Pod \"{name}\" is invalid: spec.schedulingGates[{i}].name: Forbidden: only deletion is allowed, but found new scheduling gate '{newGates[i]}'";
        }

        var oldSelector = oldSpec?["nodeSelector"] as JsonObject;
        var newSelector = newSpec?["nodeSelector"] as JsonObject;
        var oldAffinity = oldSpec?["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"];
        var newAffinity = newSpec?["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"];
        var selectorChanged = !JsonNode.DeepEquals(oldSelector, newSelector);
        var affinityChanged = !JsonNode.DeepEquals(oldAffinity, newAffinity);
        if (!selectorChanged && !affinityChanged) return null;
        if (oldGates.Count == 0)
            return $"Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                   + "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), "
                   + "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
        if (selectorChanged && oldSelector is not null)
        {
            foreach (var (key, value) in oldSelector)
            {
                if (newSelector is null || !JsonNode.DeepEquals(newSelector[key], value))
                    return $"Pod \"{name}\" is invalid: spec.nodeSelector: Invalid value: {newSelector?.ToJsonString() ?? "null"}: only additions to spec.nodeSelector are allowed (no mutations or deletions)";
            }
        }
        if (affinityChanged && oldAffinity?["nodeSelectorTerms"] is JsonArray { Count: > 0 } oldTerms)
        {
            var newTerms = newAffinity?["nodeSelectorTerms"] as JsonArray;
            if (newTerms is null || newTerms.Count != oldTerms.Count)
                return $"Pod \"{name}\" is invalid: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Invalid value: {newTerms?.Count ?? 0}: number of NodeSelectorTerms is {oldTerms.Count}, which cannot be changed";
            for (var t = 0; t < oldTerms.Count; t++)
            {
                foreach (var part in new[] { "matchExpressions", "matchFields" })
                {
                    var before = oldTerms[t]?[part] as JsonArray ?? [];
                    var after = newTerms[t]?[part] as JsonArray ?? [];
                    if (after.Count < before.Count || before.Select((r, i) => JsonNode.DeepEquals(r, after[i])).Any(same => !same))
                        return $"Pod \"{name}\" is invalid: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{t}].{part}: Invalid value: {after.ToJsonString()}: only additions are allowed (no mutations or deletions)";
                }
            }
        }
        return null;
    }

    private static List<string> GateNames(JsonObject? spec) =>
        (spec?["schedulingGates"] as JsonArray ?? []).Select(g => (string?)g?["name"] ?? "").ToList();
}
