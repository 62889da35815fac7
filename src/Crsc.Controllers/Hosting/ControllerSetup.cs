using Crsc.Controllers.Reconciling;

namespace Crsc.Controllers.Hosting;

/// <summary>A controller a <c>SetUp</c> method added to a <see cref="ControllerManager"/>, with its reconciler.</summary>
public sealed record ControllerSetup<TReconciler>(Controller Controller, TReconciler Reconciler) where TReconciler : IReconciler;
