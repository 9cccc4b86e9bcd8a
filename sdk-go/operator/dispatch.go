// What the init and reconcile exports do, independent of how they are exported, so native tests
// can drive them through a fake host.

package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/internal/exports"
	"wasm-operator.dev/sdk-go/internal/identity"
	"wasm-operator.dev/sdk-go/log"
	"wasm-operator.dev/sdk-go/reconcile"
)

// controller is what Complete registered. It is a package variable: state in linear memory
// survives swap-out, and a module has exactly one operator.
type controller struct {
	reconciler   reconcile.Reconciler
	registration func() abi.Registration // built at each init, after the OnInit hooks
	onInit       []func(ctx context.Context) error
	err          error
}

var registered *controller

// init makes the export bodies reachable from package fakehost, for native tests.
func init() {
	exports.Init, exports.Reconcile = handleInit, handleReconcile
}

// handleInit implements wasm_operator_init.
func handleInit(inputLen uint32) (code uint32) {
	defer recoverInto(&code)
	raw, err := abi.ReadInput(inputLen)
	if err != nil {
		return fail(err, 0)
	}
	var input abi.InitInput
	if err := json.Unmarshal(raw, &input); err != nil {
		return fail(fmt.Errorf("malformed init input: %w", err), 0)
	}
	if input.ABIVersion != abi.Version {
		return fail(fmt.Errorf("host speaks ABI version %d, this module was built for version %d", input.ABIVersion, abi.Version), 0)
	}
	identity.Set(input.OperatorName, input.Config)
	if registered == nil {
		return fail(fmt.Errorf("no operator registered: call operator.New().For(...).Complete(reconciler) from an init function of the module"), 0)
	}
	if registered.err != nil {
		return fail(registered.err, 0)
	}
	ctx := log.IntoContext(context.Background(), log.WithValues("operator", input.OperatorName))
	for _, fn := range registered.onInit {
		if err := fn(ctx); err != nil {
			return fail(fmt.Errorf("init: %w", err), 0)
		}
	}
	return succeed(registered.registration())
}

// handleReconcile implements wasm_operator_reconcile.
func handleReconcile(inputLen uint32) (code uint32) {
	defer recoverInto(&code)
	if registered == nil || registered.err != nil {
		return fail(fmt.Errorf("reconcile called on a module that has no valid registration"), 0)
	}
	raw, err := abi.ReadInput(inputLen)
	if err != nil {
		return fail(err, 0)
	}
	var wire abi.ReconcileRequest
	if err := json.Unmarshal(raw, &wire); err != nil {
		return fail(fmt.Errorf("malformed reconcile request: %w", err), 0)
	}
	req := reconcile.Request{
		APIVersion: wire.APIVersion, Kind: wire.Kind, Object: wire.Object, Attempt: int(wire.Attempt),
	}
	req.Namespace, req.Name = wire.Namespace, wire.Name
	if string(req.Object) == "null" {
		req.Object = nil
	}
	if req.Object == nil {
		// Set only when the object is missing, so AbsentReason is "" exactly when Object is set.
		req.AbsentReason = reconcile.ParseAbsentReason(wire.AbsentReason)
	}
	logger := log.WithValues("kind", wire.Kind, "namespace", wire.Namespace, "name", wire.Name)
	ctx := log.IntoContext(context.Background(), logger)

	result, err := registered.reconciler.Reconcile(ctx, req)
	if err != nil {
		if reconcile.IsTerminal(err) {
			logger.Error(err, "reconcile failed; not retrying")
			return succeed(abi.ReconcileResult{})
		}
		return fail(err, result.RequeueAfter)
	}
	wireResult := abi.ReconcileResult{Requeue: result.Requeue && result.RequeueAfter <= 0}
	if result.RequeueAfter > 0 {
		ms := milliseconds(result.RequeueAfter)
		wireResult.RequeueAfterMs = &ms
	}
	return succeed(wireResult)
}

// succeed writes result and returns the success code.
func succeed(result any) uint32 {
	data, err := json.Marshal(result)
	if err != nil {
		return fail(fmt.Errorf("encoding result: %w", err), 0)
	}
	abi.WriteResult(data)
	return abi.ReturnOK
}

// fail writes a GuestError and returns the error code. A positive requeueAfter asks the host to
// retry after that delay instead of its backoff.
func fail(err error, requeueAfter time.Duration) uint32 {
	guestErr := abi.GuestError{Message: err.Error()}
	if requeueAfter > 0 {
		ms := milliseconds(requeueAfter)
		guestErr.RequeueAfterMs = &ms
	}
	data, marshalErr := json.Marshal(guestErr)
	if marshalErr != nil {
		data = []byte(`{"message":"unencodable error"}`)
	}
	abi.WriteResult(data)
	return abi.ReturnError
}

// recoverInto turns a panic in the operator's code into a GuestError, so one bad reconcile fails
// like an error (retried with backoff) instead of trapping the whole instance.
func recoverInto(code *uint32) {
	if r := recover(); r != nil {
		*code = fail(fmt.Errorf("panic: %v", r), 0)
	}
}

// milliseconds rounds d up, so a sub-millisecond delay does not become "no delay".
func milliseconds(d time.Duration) uint64 {
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}
