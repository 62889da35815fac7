using Crsc.Cli;

// crsc: one binary, the node daemon and the operator CLI. Everything is in Cli/Commands.cs.
var parser = new CommandLineParser(Commands.Root(), Console.Out, Console.Error);
return await parser.RunAsync(args, CancellationToken.None);
