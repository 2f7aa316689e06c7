// A traffic router plugin for Argo Rollouts that splits a canary's traffic by the weights of a
// Gateway API HTTPRoute's backendRefs: the Rollout's stableService gets 100 - w, its canaryService w.
//
// It reads the configuration the upstream plugin (argoproj-labs/gatewayAPI) reads, so a chart written
// for one works with the other:
//
//	trafficRouting:
//	  plugins:
//	    model-server/httproute-weights:
//	      httpRoute: NAME        # in the Rollout's namespace unless `namespace` says otherwise
//	      namespace: NAMESPACE
//
// It does weights only. Header-based and mirror routes (setHeaderRoute, setMirrorRoute steps) are
// refused with an error that says so, rather than silently ignored: a step the router cannot carry
// out must stop the Rollout. The upstream plugin's module is not reachable from the machine that
// builds the local cluster, which is why this one exists; on a cluster that can install the upstream
// plugin, use it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/rollout/trafficrouting/plugin/rpc"
	"github.com/argoproj/argo-rollouts/utils/plugin/types"
	goPlugin "github.com/hashicorp/go-plugin"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Name is the name the controller's argo-rollouts-config registers this plugin under.
const Name = "model-server/httproute-weights"

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// The controller's half of the handshake (rollout/trafficrouting/plugin/client).
var handshake = goPlugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "ARGO_ROLLOUTS_RPC_PLUGIN",
	MagicCookieValue: "trafficrouter",
}

type config struct {
	HTTPRoute string `json:"httpRoute"`
	Namespace string `json:"namespace"`
}

type router struct {
	client dynamic.Interface
}

func fail(format string, args ...any) types.RpcError {
	return types.RpcError{ErrorString: fmt.Sprintf(Name+": "+format, args...)}
}

func (r *router) InitPlugin() types.RpcError {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fail("no in-cluster configuration: %v", err)
	}
	r.client, err = dynamic.NewForConfig(cfg)
	if err != nil {
		return fail("%v", err)
	}
	return types.RpcError{}
}

// route returns the HTTPRoute the Rollout names and the names of its stable and canary Services.
func (r *router) route(ctx context.Context, ro *v1alpha1.Rollout) (*unstructured.Unstructured, string, string, types.RpcError) {
	canary := ro.Spec.Strategy.Canary
	if canary == nil || canary.TrafficRouting == nil {
		return nil, "", "", fail("rollout %s has no canary trafficRouting", ro.Name)
	}
	var c config
	if err := json.Unmarshal(canary.TrafficRouting.Plugins[Name], &c); err != nil || c.HTTPRoute == "" {
		return nil, "", "", fail("rollout %s: trafficRouting.plugins[%q] needs httpRoute (%v)", ro.Name, Name, err)
	}
	if c.Namespace == "" {
		c.Namespace = ro.Namespace
	}
	route, err := r.client.Resource(httpRoutes).Namespace(c.Namespace).Get(ctx, c.HTTPRoute, metav1.GetOptions{})
	if err != nil {
		return nil, "", "", fail("HTTPRoute %s/%s: %v", c.Namespace, c.HTTPRoute, err)
	}
	return route, canary.StableService, canary.CanaryService, types.RpcError{}
}

// visit calls each for the stable and the canary backendRef of every rule that names both Services,
// and writes the rules back into route. A route with no such rule is an error: the Rollout would
// move pods and no traffic.
func visit(route *unstructured.Unstructured, stable, canary string, each func(ref map[string]any, isCanary bool)) (int, error) {
	rules, _, err := unstructured.NestedSlice(route.Object, "spec", "rules")
	if err != nil {
		return 0, err
	}
	found := 0
	for _, rule := range rules {
		// Not NestedSlice here: it returns a copy, and the weights must be set in these very maps.
		refs, _ := rule.(map[string]any)["backendRefs"].([]any)
		var seen [2]bool
		for _, ref := range refs {
			name, _, _ := unstructured.NestedString(ref.(map[string]any), "name")
			seen[0] = seen[0] || name == stable
			seen[1] = seen[1] || name == canary
		}
		if !seen[0] || !seen[1] {
			continue
		}
		found++
		for _, ref := range refs {
			m := ref.(map[string]any)
			switch name, _, _ := unstructured.NestedString(m, "name"); name {
			case stable:
				each(m, false)
			case canary:
				each(m, true)
			}
		}
	}
	if err := unstructured.SetNestedSlice(route.Object, rules, "spec", "rules"); err != nil {
		return 0, err
	}
	if found == 0 {
		return 0, fmt.Errorf("HTTPRoute %s/%s has no rule whose backendRefs name both %s and %s",
			route.GetNamespace(), route.GetName(), stable, canary)
	}
	return found, nil
}

func (r *router) SetWeight(ro *v1alpha1.Rollout, desired int32, extra []v1alpha1.WeightDestination) types.RpcError {
	if len(extra) > 0 {
		return fail("additional weight destinations (experiments) are not supported")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	route, stable, canary, rpcErr := r.route(ctx, ro)
	if rpcErr.HasError() {
		return rpcErr
	}
	_, err := visit(route, stable, canary, func(ref map[string]any, isCanary bool) {
		if isCanary {
			ref["weight"] = int64(desired)
		} else {
			ref["weight"] = int64(100 - desired)
		}
	})
	if err != nil {
		return fail("%v", err)
	}
	if _, err := r.client.Resource(httpRoutes).Namespace(route.GetNamespace()).Update(ctx, route, metav1.UpdateOptions{}); err != nil {
		return fail("updating HTTPRoute %s/%s: %v", route.GetNamespace(), route.GetName(), err)
	}
	return types.RpcError{}
}

func (r *router) VerifyWeight(ro *v1alpha1.Rollout, desired int32, extra []v1alpha1.WeightDestination) (types.RpcVerified, types.RpcError) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	route, stable, canary, rpcErr := r.route(ctx, ro)
	if rpcErr.HasError() {
		return types.NotVerified, rpcErr
	}
	ok := true
	_, err := visit(route, stable, canary, func(ref map[string]any, isCanary bool) {
		want := int64(100 - desired)
		if isCanary {
			want = int64(desired)
		}
		got, found, _ := unstructured.NestedInt64(ref, "weight")
		if !found {
			got = 1 // the Gateway API default
		}
		ok = ok && got == want
	})
	if err != nil {
		return types.NotVerified, fail("%v", err)
	}
	if ok {
		return types.Verified, types.RpcError{}
	}
	return types.NotVerified, types.RpcError{}
}

func (r *router) SetHeaderRoute(ro *v1alpha1.Rollout, h *v1alpha1.SetHeaderRoute) types.RpcError {
	if h != nil && len(h.Match) > 0 {
		return fail("setHeaderRoute steps are not supported (weights only)")
	}
	return types.RpcError{}
}

func (r *router) SetMirrorRoute(ro *v1alpha1.Rollout, m *v1alpha1.SetMirrorRoute) types.RpcError {
	if m != nil && len(m.Match) > 0 {
		return fail("setMirrorRoute steps are not supported (weights only)")
	}
	return types.RpcError{}
}

// The pod hashes are the Services' business (the controller sets their selectors): nothing to do.
func (r *router) UpdateHash(*v1alpha1.Rollout, string, string, []v1alpha1.WeightDestination) types.RpcError {
	return types.RpcError{}
}

// No header or mirror routes are ever added, so none are left to remove.
func (r *router) RemoveManagedRoutes(*v1alpha1.Rollout) types.RpcError {
	return types.RpcError{}
}

func (r *router) Type() string { return Name }

func main() {
	goPlugin.Serve(&goPlugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins: map[string]goPlugin.Plugin{
			"RpcTrafficRouterPlugin": &rpc.RpcTrafficRouterPlugin{Impl: &router{}},
		},
	})
}
