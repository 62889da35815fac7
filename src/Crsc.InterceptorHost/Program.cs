using Crsc.Cli;
using Crsc.Interceptor;

// crsc-interceptor: `crsc interceptor` as a small binary of its own (the injected sidecar runs it); logs on stderr.
var root = InterceptorCommand.Spec(InterceptorCommand.ExecutableName, InterceptorCommand.ExecutableName, LineLoggerFactory.Stderr);
return await new CommandLineParser(root, Console.Out, Console.Error).RunAsync(args, CancellationToken.None);
