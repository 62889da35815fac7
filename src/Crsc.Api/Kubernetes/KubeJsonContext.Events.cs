namespace Crsc.Api.Kubernetes;

// The [JsonSerializable] attributes for CoreEvent moved to KubeJsonContext.cs: the System.Text.Json source generator
// fails ("hintName 'KubeJsonContext.Boolean.g.cs' must be unique") when they are spread over more than one partial
// declaration of the context. Add new types to the list in KubeJsonContext.cs.
public sealed partial class KubeJsonContext;
