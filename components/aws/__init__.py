"""AWS building blocks: the network, the EKS cluster, and IAM for workload identities."""
