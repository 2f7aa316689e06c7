"""The helpers every test suite shares, imported one way: ``from support.<module> import <name>``
(tests/ is on pytest's pythonpath).

paths: where things are in the repository · tools: the pinned tools and running them · kube: Kubernetes
versions, schemas and kubeconform · helm: rendering the chart · serverproc: real server processes ·
app: the real app in-process · pods: running what a rendered pod spec says · hostile: crafted bundles
and archives · monitoring, prometheus: the monitoring files and the API of the cluster's Prometheus ·
gitops: the Argo CD objects and the releases environments/ declares · argocd: Argo CD and a Git
server on the cluster · models: model code the test bundles import.
"""
